"""DoctorPanel: is everything the course needs in place, and what to do if not.

Answers four questions at the top of the course: which container engine answers (and where
its published ports open), which exercise images are built (with a button that builds the
missing ones, one progress bar per image), what the course covers, and where to get help.
The panel reports problems instead of raising them: it is where a learner goes when things fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets

from portbinding.builder import BuildEvent, ImageStatus, build_images, list_images
from portbinding.discovery import EngineInfo
from portbinding.engine import Engine
from portbinding.engine_errors import ENGINE_ERRORS, engine_stopped
from portbinding.errors import PortBindingError
from portbinding.images import IMAGES
from portbinding.widgets._base import WorkerBacked
from portbinding.widgets._ui import (
    GREEN,
    RED,
    BuildBars,
    MessageArea,
    badge,
    button,
    code,
    error_text,
    esc,
    heading,
    table,
)
from portbinding.widgets._worker import Worker
from portbinding.widgets.session import lesson_engine

# One line per lesson, shown in the panel and in lesson 00.
COURSE_OUTLINE: tuple[tuple[str, str], ...] = (
    ("00-start-here", "Check your engine and images; how the widgets work; where to get help."),
    ("01-port-binding", "The three numbers that must line up: host port, container port, listen address."),
    ("02-the-unreachable-notebook", "Jupyter on 127.0.0.1 in a container: probe, diagnose, fix it two ways."),
    ("03-port-mapping", "When -p itself is wrong: wrong container port, port taken, random ports, IPv6."),
    ("04-failure-mode-lab", "The app lets you down: crash before listen, slow start, the wrong service."),
    ("05-model-serving-api", "A model-scoring API: 12-factor port binding, a reverse proxy, a v2 rollout."),
    ("06-review", "Flash cards, interview questions, the request path in order, a live runtime check."),
)

HELP_LINES: tuple[tuple[str, str], ...] = (
    ("portbinding doctor", "in a terminal: the same checks as this panel (add --install on Debian as root)"),
    (
        "portbinding diagnose NAME",
        "why a container's port is (un)reachable; `portbinding ps` lists the names",
    ),
    ("portbinding cleanup", "removes every container the course started"),
    ("README.md", "the two commands that set everything up and run the tests"),
)


@dataclass(frozen=True)
class DoctorReport:
    """What the doctor found: the engine (None if none answers), the images, and any problem."""

    engine: EngineInfo | None
    images: tuple[ImageStatus, ...]
    problem: str = ""

    @property
    def missing(self) -> list[str]:
        return [status.reference for status in self.images if not status.present]

    @property
    def to_build(self) -> list[str]:
        """The images to build: missing, or built from an older copy of the course."""
        return [status.reference for status in self.images if status.needs_build]

    @property
    def ready(self) -> bool:
        """True when an engine answers and every image is built from this copy of the course."""
        return self.engine is not None and not self.problem and not self.to_build


class DoctorPanel(WorkerBacked, widgets.VBox):  # type: ignore[misc]
    """Engine, images (with a build button), the course outline and help, in one panel."""

    def __init__(self, *, engine: Engine | None = None) -> None:
        self._given_engine = engine
        self._report: DoctorReport | None = None
        self._engine_view = widgets.HTML(
            "<small>Not checked yet: click Check again (or doctor.refresh()).</small>"
        )
        self._engine_view.add_class("pbl-doctor-engine")
        self._images_view = widgets.HTML()
        self._images_view.add_class("pbl-doctor-images")
        self._refresh = button("Check again", css_class="pbl-doctor-refresh", icon="refresh")
        self._build = button(
            "Build missing images",
            css_class="pbl-build",
            style="primary",
            icon="gears",
            tooltip="Build the exercise images this engine does not have yet",
        )
        self._progress = BuildBars()
        self._message = MessageArea()
        self._worker = Worker(
            self._message,
            buttons=[self._refresh, self._build],
            on_idle=self._sync_buttons,
            name="portbinding-doctor",
        )
        self._refresh.on_click(self._on_refresh_click)
        self._build.on_click(self._on_build_click)
        outline = table(
            ["lesson", "what you will learn"],
            [[code(name), esc(text)] for name, text in COURSE_OUTLINE],
            css_class="pbl-outline",
        )
        help_rows = table(
            ["", ""], [[code(what), esc(text)] for what, text in HELP_LINES], css_class="pbl-help"
        )
        super().__init__(
            children=[
                widgets.HTML(heading("Course doctor", level=3)),
                widgets.HTML(heading("1. Container engine")),
                self._engine_view,
                widgets.HTML(heading("2. Exercise images")),
                self._images_view,
                widgets.HBox([self._refresh, self._build]),
                self._progress,
                self._message,
                widgets.HTML(heading("3. What the course covers") + outline),
                widgets.HTML(heading("4. Getting help") + help_rows),
            ]
        )
        self.add_class("pbl-doctor")
        self.add_class("pbl-keys")  # keys pressed in it stay with it (see _announce.py)
        self._sync_buttons()

    # ------------------------------------------------------------------ state

    @property
    def report(self) -> DoctorReport | None:
        """The last check's findings (None before the first)."""
        return self._report

    # ------------------------------------------------------------------ actions

    def refresh(self) -> DoctorReport:
        """Check the engine and the images again; problems are shown (and reported), not raised."""
        return self._worker.call(self._refresh_job, label="Checking the engine and the images")

    def build_missing(self) -> list[str]:
        """Build every missing or outdated exercise image (a progress bar each); returns those built."""
        return self._worker.call(self._build_job, label="Building the missing images")

    # ------------------------------------------------------------------ handlers and jobs

    def _on_refresh_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._refresh_job, label="Checking the engine and the images")

    def _on_build_click(self, _: widgets.Button) -> None:
        self._worker.submit(self._build_job, label="Building the missing images")

    def _refresh_job(self) -> DoctorReport:
        try:
            engine = self._given_engine or lesson_engine()
            images = tuple(list_images(engine.client))
        except PortBindingError as error:
            report = DoctorReport(None, (), problem=str(error))
            self._render(report, error)
            return report
        except ENGINE_ERRORS as error:
            stopped = engine_stopped(error)
            report = DoctorReport(None, (), problem=stopped.message)
            self._render(report, stopped)
            return report
        report = DoctorReport(engine.info, images)
        self._render(report, None)
        return report

    def _build_job(self) -> list[str]:
        engine = self._given_engine or lesson_engine()
        try:
            missing = [s.reference for s in list_images(engine.client) if s.needs_build]
        except ENGINE_ERRORS as error:
            raise engine_stopped(error) from error
        if not missing:
            self._message.ok("Every exercise image is built already: nothing to do.")
            return []
        names = list(dict.fromkeys(image.name for image in IMAGES if image.reference in missing))
        self._message.busy(
            f"Building {len(names)} image(s): {', '.join(names)}. The first build can take a few "
            "minutes; the bars show each image's steps."
        )
        build_images(engine.client, names, progress=self._on_build_event)
        self._refresh_job()
        self._message.ok(f"Built: {', '.join(missing)}.")
        return missing

    def _on_build_event(self, event: BuildEvent) -> None:
        # Called on the worker thread: only widget state changes here, never print().
        self._progress.update(event)

    # ------------------------------------------------------------------ views

    def _render(self, report: DoctorReport, error: BaseException | None) -> None:
        self._report = report
        if report.engine is None:
            message, hint = error_text(error) if error is not None else (report.problem, "")
            self._engine_view.value = (
                f'<div style="border-left:4px solid {RED};padding:4px 8px;line-height:1.45">'
                f"{badge(False, no='No engine answers')}"
                f'<div style="white-space:pre-wrap">{esc(message)}</div>'
                + (f"<div><b>Next step:</b> {esc(hint)}</div>" if hint else "")
                + "</div>"
            )
            self._images_view.value = "<small>Images can be checked once an engine answers.</small>"
            return
        info = report.engine
        rows = [
            [
                "engine",
                esc(
                    f"{'rootless ' if info.rootless else ''}{info.kind.capitalize()} {info.version} "
                    f"(API {info.api_version})"
                ),
            ],
            ["address", code(info.url) + esc(f" (found via {info.source})")],
            ["published ports open at", code(info.publish_host) + esc(f" — {info.publish_host_reason}")],
        ]
        self._engine_view.value = (
            f'<div style="border-left:4px solid {GREEN};padding:4px 8px;line-height:1.45">'
            + badge(True, yes="Engine found")
            + table(["", ""], rows)
            + "</div>"
        )
        image_rows = [
            [
                code(status.reference),
                badge(status.present and not status.outdated, yes="built", no=status.word),
                esc(f"{status.size_bytes / 1e6:.0f} MB" if status.present else "—"),
            ]
            for status in report.images
        ]
        summary = (
            badge(True, yes="All exercise images are built.")
            if not report.to_build
            else badge(
                False,
                no=f"{len(report.to_build)} image(s) missing or built from an older copy of the course: "
                "click Build missing images.",
            )
        )
        self._images_view.value = table(["image", "status", "size"], image_rows) + f"<div>{summary}</div>"

    def _sync_buttons(self) -> None:
        report = self._report
        self._build.disabled = report is not None and (report.engine is None or not report.to_build)

    def __repr__(self) -> str:  # the text/plain fallback where widgets cannot render (terminals, nbconvert)
        return f"DoctorPanel(ready={self._report.ready if self._report else None})"
