"""The process engine: the course's exercise images run as local processes, for Binder.

mybinder.org has no Docker and no Podman (no root, unprivileged pods). The process engine
answers the part of the Docker Engine API the course uses, on a Unix socket, so every part of
the course -- Engine, diagnose, widgets, CLI -- talks to it exactly as to Docker:

* an "image" is one of the course's image folders: its Dockerfile says what to run
  (:mod:`recipes`);
* a "container" is a process group started from that recipe (:mod:`container`), with its
  files in a private folder and two addresses of its own on the loopback network:
  ``127.42.0.N`` plays its eth0 and ``127.42.1.N`` its loopback. A small ``sitecustomize``
  (:mod:`shim`) moves the sockets the server binds onto those addresses, so ``0.0.0.0`` and
  ``127.0.0.1`` inside the container stay different things (:mod:`netview`);
* ``-p HOST:CONTAINER`` starts the course's own publisher (:mod:`publisher`), playing
  docker-proxy's part: it accepts on the host port and connects onward to the container's
  eth0 address -- so a server bound to the container's 127.0.0.1 really is unreachable.

* the daemon (:mod:`daemon`) runs the containers and serves the API (:mod:`api`); a
  container's output is kept and streamed as Docker does (:mod:`output`).

Start it with ``PORTBINDING_ENGINE=process`` (``binder/start`` sets it): the first
``Engine.connect()`` starts the daemon (:mod:`launch`).
"""
