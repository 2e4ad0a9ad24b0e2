"""Composite ipywidgets for the lessons: each one a VBox that runs real containers.

Every widget does its engine work on one worker thread of its own when a button is clicked,
and offers the same steps as plain methods for notebook cells and tests. Errors are shown as
messages with a next step, never as tracebacks. Importing the package in an IPython kernel
also shows course errors raised by a cell that way (``session.install_friendly_errors``).
"""

from __future__ import annotations

from portbinding.widgets.cards import FlashCards, InterviewCards, InterviewQuestion
from portbinding.widgets.challenge import ChallengeWidget
from portbinding.widgets.console import ContainerConsole, RunTarget
from portbinding.widgets.doctor import COURSE_OUTLINE, DoctorPanel, DoctorReport
from portbinding.widgets.drill import ConceptDrill, DrillResult, DrillSettings
from portbinding.widgets.portmap import Hop, PortMapDiagram
from portbinding.widgets.probe_light import ProbeLight
from portbinding.widgets.reorder import ReorderExercise
from portbinding.widgets.session import end_lesson, install_friendly_errors, lesson_engine

__all__ = [
    "COURSE_OUTLINE",
    "ChallengeWidget",
    "ConceptDrill",
    "ContainerConsole",
    "DoctorPanel",
    "DoctorReport",
    "DrillResult",
    "DrillSettings",
    "FlashCards",
    "Hop",
    "InterviewCards",
    "InterviewQuestion",
    "PortMapDiagram",
    "ProbeLight",
    "ReorderExercise",
    "RunTarget",
    "end_lesson",
    "lesson_engine",
]

install_friendly_errors()
