"""Port Binding Lab toolkit: run specs, engine, probes, diagnosis, widgets and checks."""

from __future__ import annotations

__version__ = "0.1.0"
