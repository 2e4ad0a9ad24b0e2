# Shipped as /etc/jupyter/jupyter_server_config.py in the `notebook` image.
c = get_config()  # noqa: F821 -- injected by Jupyter when it loads this file

# "" means every interface (0.0.0.0 and ::). This one line is the fix the course teaches:
# a server bound to 127.0.0.1 only accepts connections that start inside the container.
c.ServerApp.ip = ""
c.ServerApp.port = 8888
c.ServerApp.open_browser = False
# A token is still required to open notebooks (see `docker logs`); GET /api needs none,
# which is what the course's probes use.
