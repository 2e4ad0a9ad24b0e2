"""The parts of the Docker Engine API's JSON the course reads, as types.

docker-py hands back ``dict[str, Any]`` (``container.attrs``, ``client.version()``, an image's
``attrs``); these TypedDicts name the subset the course reads, so mypy checks every key and
value it uses. Every key is optional (``total=False``): Podman and older engines leave some out,
and the process engine answers only what the course asks. The casts live in the accessors
below, once.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast


class PortBinding(TypedDict, total=False):
    """One entry of ``HostConfig.PortBindings`` or ``NetworkSettings.Ports``."""

    HostIp: str
    HostPort: str  # "" (any free port), "8888", or a range "8000-8010" (PortBindings only)


PortMap = dict[str, list[PortBinding] | None]  # "8888/tcp" -> bindings (None: exposed, not published)


class Health(TypedDict, total=False):
    Status: str  # starting, healthy, unhealthy


class ContainerState(TypedDict, total=False):
    Status: str  # created, running, exited, ...
    Running: bool
    ExitCode: int
    Error: str
    OOMKilled: bool
    StartedAt: str
    FinishedAt: str
    Health: Health | None


class ContainerConfig(TypedDict, total=False):
    Image: str
    Env: list[str] | None
    Labels: dict[str, str] | None
    ExposedPorts: dict[str, dict[str, Any]] | None
    Cmd: list[str] | None
    Entrypoint: list[str] | None
    User: str
    Healthcheck: dict[str, Any] | None


class HostConfig(TypedDict, total=False):
    PortBindings: PortMap | None
    PublishAllPorts: bool


class EndpointSettings(TypedDict, total=False):
    IPAddress: str


class NetworkSettings(TypedDict, total=False):
    IPAddress: str
    Ports: PortMap | None
    Networks: dict[str, EndpointSettings | None] | None


class ContainerInspect(TypedDict, total=False):
    """``docker inspect CONTAINER``, the parts the course reads."""

    Id: str
    Name: str
    Created: str
    Image: str  # the image id
    State: ContainerState
    Config: ContainerConfig
    HostConfig: HostConfig
    NetworkSettings: NetworkSettings


class ImageInspect(TypedDict, total=False):
    """``docker image inspect IMAGE``, the parts the course reads."""

    Id: str
    RepoTags: list[str] | None
    Size: int
    Config: ContainerConfig


class VersionComponent(TypedDict, total=False):
    Name: str
    Version: str


class VersionInfo(TypedDict, total=False):
    """``GET /version``."""

    Version: str
    ApiVersion: str
    Components: list[VersionComponent] | None


def container_inspect(attrs: dict[str, Any]) -> ContainerInspect:
    """A container's ``attrs`` (docker-py's inspect result), typed."""
    return cast(ContainerInspect, attrs)


def image_inspect(attrs: dict[str, Any]) -> ImageInspect:
    """An image's ``attrs``, typed."""
    return cast(ImageInspect, attrs)


def version_info(version: dict[str, Any]) -> VersionInfo:
    """``client.version()``, typed."""
    return cast(VersionInfo, version)
