# Shipped as /etc/jupyter/jupyter_server_config.py in the `notebook-loopback` image.
c = get_config()  # noqa: F821 -- injected by Jupyter when it loads this file

# The bug this course is about: 127.0.0.1 inside a container is the container's own loopback,
# not the host's. docker-proxy forwards to the container's eth0 address, where nothing listens.
# Fix: c.ServerApp.ip = "" (every interface), or run with `--ServerApp.ip=0.0.0.0`.
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = 8888
c.ServerApp.open_browser = False
# A token is still required to open notebooks (see `docker logs`); GET /api needs none.
