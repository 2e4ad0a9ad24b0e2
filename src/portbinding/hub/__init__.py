"""A whole class on one machine: JupyterHub, a safe engine per student, the nbgrader exchange.

``roster`` (who is in the class, their password hashes), ``classroom`` (accounts, exchange,
course, proxy), ``engines`` (each student's rootless Podman), ``limits`` (a cgroup per
student), ``config``/``auth``/``spawner`` (what JupyterHub loads), ``cli`` (``portbinding hub``).
JupyterHub itself is the optional extra ``portbinding[hub]``: a learner's own install never
needs it.
"""
