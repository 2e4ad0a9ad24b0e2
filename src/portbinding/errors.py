"""The course's exception hierarchy.

Every error a learner can cause carries a message written for them: what was
expected, what was observed, and the next step (``hint``). The CLI and the
widgets show ``str(error)``; nothing should need a traceback to be understood.
"""

from __future__ import annotations


class PortBindingError(Exception):
    """Base of every error the course raises on purpose."""

    # About what was asked for (a name, a port, a folder), not about the machine: the command
    # line exits 2 for these, as for a usage error.
    bad_input = False

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nNext step: {self.hint}"
        return self.message


class PortSpecError(PortBindingError, ValueError):
    """A ``-p/--publish`` value that Docker would reject."""

    bad_input = True


class UnknownName(PortBindingError, ValueError):
    """A name the course does not know, or cannot tell apart: a scenario, an image, a Compose service."""

    bad_input = True


class PolicyError(PortBindingError, ValueError):
    """A ``docker run`` line that the course policy does not allow."""

    bad_input = True


class EngineError(PortBindingError):
    """Something went wrong talking to the container engine."""


class EngineUnavailable(EngineError):
    """No container engine answers (not installed, not started, or no permission)."""


class PodmanUnavailable(EngineUnavailable):
    """Rootless Podman could not be set up or started here (see ``portbinding.podman``)."""


class EngineStopped(EngineUnavailable):
    """An engine that answered before stopped answering mid-session (stopped, restarted, crashed).

    The client stays usable: once the engine answers again on the same address, the next call
    works, so a widget says "this panel reconnects by itself" rather than "restart the kernel".
    """


class ImageMissing(EngineError):
    """The image a run needs is not present on the engine."""


class UnknownImage(ImageMissing, UnknownName):
    """An exercise image name that is not in the course's catalogue (bad input, not a fault)."""


class PortInUse(EngineError):
    """The host port a run asked for is already taken."""

    def __init__(self, message: str, *, port: int, suggestion: int | None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.port = port
        self.suggestion = suggestion


class ContainerFailed(EngineError):
    """A container could not be created or started, or is not there any more."""


class ContainerNotFound(ContainerFailed):
    """No container with that name or id exists."""

    bad_input = True  # a name the learner typed


class ImageBuildError(EngineError):
    """An exercise image could not be built."""


class CourseFilesMissing(PortBindingError):
    """A folder the course ships (the image folders, the course material) is not where it should be."""
