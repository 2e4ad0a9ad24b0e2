"""Lesson 06's review material: flash cards, interview questions, one request's journey.

It lives here, not in the lesson's code cells, so that the answers are not printed right above
the widgets that ask for them. Text in `backticks` is shown as inline code by the widgets.
"""

from __future__ import annotations

from portbinding.widgets.cards import InterviewQuestion

FLASH_CARDS: list[tuple[str, str]] = [
    (
        "In `-p 8080:8888`, which number is the host port?",
        "8080, the left one. Clients connect to it on the host. 8888 is the container port, where "
        "the app listens inside.",
    ),
    (
        "What must the right-hand number of `-p` match?",
        "The port the app actually listens on inside the container. Docker does not check it: a "
        "wrong number gives a reset or a refusal, not an error at run time.",
    ),
    (
        "Why does a server listening on 127.0.0.1 inside a container not answer `-p`?",
        "127.0.0.1 inside the container is the container's own loopback. Forwarded connections "
        "arrive on its eth0 address, where nothing listens. Bind 0.0.0.0.",
    ),
    (
        "What does `EXPOSE 8000` in a Dockerfile do?",
        "It documents the port and sets the default for `-P`. It opens nothing. Only publishing "
        "(`-p` / `-P`) opens a host port.",
    ),
    (
        "What does `-P` do, and how do you find the port it chose?",
        "It publishes every EXPOSEd port on a random free host port. `docker port NAME` (or the "
        "engine's NetworkSettings.Ports) tells you which one.",
    ),
    (
        "Read this PORTS entry: `127.0.0.1:49153->8888/tcp`",
        "Host loopback 127.0.0.1, host port 49153, forwarded to container port 8888 over TCP. Only "
        "this machine can use it.",
    ),
    (
        "`8888/tcp` in the PORTS column with no arrow means…",
        "Exposed but not published: nothing on the host leads to it, so connections are refused.",
    ),
    (
        "Why is `-p 127.0.0.1:8888:8888` a safe default?",
        "It publishes on the host's loopback only, so other machines cannot reach the container. "
        "Plain `-p 8888:8888` listens on every address of the host.",
    ),
    (
        "Why doesn't `ufw deny 8888` block a port published with `-p 8888:8888`?",
        "Docker DNATs the traffic in the nat table to the container's address. It is then forwarded"
        " (FORWARD, DOCKER-USER chains), and never meets ufw's INPUT rules.",
    ),
    (
        "What does 'port is already allocated' mean?",
        "Another container (or another process, 'address already in use') already holds that host "
        "port. Pick a free host port or stop the holder.",
    ),
    (
        "Same mistake, two symptoms: why reset via localhost but refused via the host's IP?",
        "Via 127.0.0.1, docker-proxy accepts the connection and then cannot reach the container, so"
        " it resets. Via the host's IP, DNAT sends the SYN straight to the container, whose kernel "
        "refuses it.",
    ),
    (
        "Why is a successful TCP connect not proof that the app is reachable?",
        "docker-proxy accepts connections on a published port even when nothing answers behind it. "
        "Probe with a real HTTP request.",
    ),
    (
        "The container exited right after `docker run -d`. First step?",
        "`docker logs NAME`: the app usually says why (here: MODEL_PATH not set), and the exit code"
        " tells you it failed.",
    ),
    (
        "Running vs ready?",
        "Running means the process started. Ready means it answers. Poll the endpoint with a "
        "deadline, or wait for HEALTHCHECK to report healthy. Never a fixed sleep.",
    ),
    (
        "Docker says healthy, yet you can't reach the app. How?",
        "HEALTHCHECK runs inside the container, where 127.0.0.1 works. It proves the process, not "
        "the network path. Probe from outside.",
    ),
    (
        "What is Jupyter's `port_retries` trap in containers?",
        "If its port is taken inside the container, Jupyter silently moves to the next one (8889). "
        "`-p` still points at 8888. Set `c.ServerApp.port_retries = 0`.",
    ),
    (
        "12-factor port binding in one sentence?",
        "The app is self-contained and exports HTTP by binding one port taken from config (PORT), "
        "on 0.0.0.0.",
    ),
    (
        "How does a model API fail silently at the network layer?",
        "The request never reaches the process (refused/reset), and a client that catches the error"
        " and returns a default score hides the outage. Inference never runs.",
    ),
]

INTERVIEW_QUESTIONS: list[InterviewQuestion] = [
    InterviewQuestion(
        "beginner",
        "What is the difference between EXPOSE and -p?",
        "EXPOSE is metadata in the image: it documents the port and feeds -P. -p is a runtime "
        "decision that asks the engine to open a host port and forward it. Without -p or -P nothing"
        " is reachable from the host, whatever EXPOSE says.",
    ),
    InterviewQuestion(
        "beginner",
        "You ran `docker run -p 8888:8888 jupyter` and the browser can't connect. What do you check first?",
        "`docker ps`: is it still running and does PORTS show the arrow? Then `docker logs` for "
        "crashes and errors (not for the address: Jupyter's URL line can mislead). Then a request "
        "from inside (`docker exec … curl localhost:8888`) to separate 'app broken' from 'path "
        "broken'.",
    ),
    InterviewQuestion(
        "beginner",
        "How do you find which host port -P chose?",
        "`docker port NAME` or `docker ps`. In code, read NetworkSettings.Ports from the engine API"
        " rather than parsing text.",
    ),
    InterviewQuestion(
        "beginner",
        "Why publish on 127.0.0.1 during development?",
        "Because plain -p listens on every host address, including the Wi-Fi, and Docker's iptables"
        " rules bypass the host firewall. 127.0.0.1 keeps a token-less notebook or debug API "
        "private to your machine.",
    ),
    InterviewQuestion(
        "intermediate",
        "curl to localhost:8888 gives 'Connection reset by peer'. What does that tell you, and what"
        " doesn't it?",
        "Something accepted the connection on the host (docker-proxy), so the port is published. It"
        " does not say why the container side failed: loopback-only listener, wrong container port "
        "or still starting all look the same. Look at the listeners inside (/proc/net/tcp) and "
        "probe from inside.",
    ),
    InterviewQuestion(
        "intermediate",
        "How do you wait for a container to be ready in a script or CI job?",
        "Poll a real readiness endpoint from the caller's side with a deadline and backoff, and "
        "stop early if the container exits. Or use HEALTHCHECK and wait for healthy. Never `sleep "
        "10`: too short on a slow day, wasted on a fast one.",
    ),
    InterviewQuestion(
        "intermediate",
        "Why might a port published with -p be reachable from the internet even though ufw denies it?",
        "Docker inserts DNAT rules in the nat table (PREROUTING -> DOCKER), so the packets are "
        "forwarded to the container and never hit ufw's INPUT chain. Publish on 127.0.0.1, filter "
        "in DOCKER-USER, or keep the service behind a reverse proxy.",
    ),
    InterviewQuestion(
        "intermediate",
        "What does 12-factor 'port binding' mean for a containerised service?",
        "The app embeds its own HTTP server and binds one port read from config (PORT), on 0.0.0.0."
        " The platform maps and routes that port. No app server is injected at runtime, and health "
        "and metrics are paths on the same port.",
    ),
    InterviewQuestion(
        "expert",
        "The same broken container is 'reset' through localhost but 'refused' through the host's "
        "IP. Explain the packet paths.",
        "Loopback traffic skips the OUTPUT DNAT rule (! -d 127.0.0.0/8) and hits docker-proxy, "
        "which accepts and then fails upstream: a reset or an empty reply. Traffic to the host IP "
        "is DNATed in the kernel straight to container_ip:port, and the container's kernel answers "
        "the SYN with a RST: refused. Diagnose from evidence, not from the symptom.",
    ),
    InterviewQuestion(
        "expert",
        "A HEALTHCHECK says healthy but users can't reach the service. How can both be true, and "
        "how do you design checks to catch it?",
        "An exec-style check runs inside the container's network namespace, so 127.0.0.1 works "
        "there. It proves the process, not the path. Add a probe that travels the user's path "
        "(through the published port or service IP, like a Kubernetes httpGet probe), plus "
        "black-box monitoring from outside.",
    ),
    InterviewQuestion(
        "expert",
        "How would you roll out v2 of a model API with no downtime, and what makes rollback cheap?",
        "Run v2 next to v1 behind a reverse proxy and shift weights in stages (say 10/50/100), "
        "gating each stage on error rate, latency and prediction drift. Keep v1 running and its "
        "image tag pinned until v2 has held full traffic. Rollback is then one weight change, not a"
        " rebuild.",
    ),
    InterviewQuestion(
        "expert",
        "Your scoring client returns a default score when the API fails. What is the risk and what "
        "would you change?",
        "Network-layer failures (refused, reset, timeout) become plausible numbers, so a total "
        "outage is invisible and inference never runs. Raise or mark the fallback, count it as a "
        "metric, alert on the fallback rate, and probe readiness from the client side.",
    ),
]

REQUEST_JOURNEY: list[str] = [
    "A client sends the request to http://HOST:8000 (a browser, curl, another service)",
    "The host's port 8000 receives it",
    "Docker's port mapping 8000:8000 forwards it to the container (docker-proxy or a DNAT rule)",
    "It arrives at container port 8000 on the container's own network interface",
    "The app process, listening on 0.0.0.0:8000, accepts it and answers",
]
