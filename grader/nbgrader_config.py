"""nbgrader configuration for Port Binding Lab -- only what this course needs.

Run nbgrader commands from this folder, as the instructor's account (see README.md). Everything
else is nbgrader's default. Root's `portbinding grade` never runs this file: it reads the course
id and the timeout from it as literals and grades with the package's own, equal config
(portbinding.grading.rootconfig; a test keeps the two equal).
"""

import os

from portbinding.grading.execute import autograde_preprocessors

c = get_config()  # noqa: F821 -- injected by nbgrader when it loads this file

# This folder is the course: source/ (instructors' notebooks with solutions and hidden tests),
# release/, submitted/, autograded/, feedback/ and gradebook.db all live here.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.course_id = "port-binding-lab"

# Checks start containers and wait for them (and ex03 builds an image): nbgrader's 30 s per
# cell is too short on a busy grading machine. Endless loops are still stopped by this.
c.Execute.timeout = 180

# Learner code never runs next to the container engine: every autograde executes notebooks
# in the grading sandbox (no engine socket, no network, a throwaway user, limits), and
# containers are started only through the grading door. See README.md, "Safety".
c.Autograde.autograde_preprocessors = autograde_preprocessors()

# Nothing a student wrote is ever live in a browser: the formgrader and the feedback HTML render
# notebooks through nbconvert's HTMLExporter; it makes them inert again before rendering (the
# autograde step above already did) and sanitizes HTML with bleach. nbgrader's own templates
# do not sanitize markdown: the preprocessor does. See README.md, "Instructor workflow".
c.HTMLExporter.preprocessors = ["portbinding.grading.sanitize.SanitizeNotebook"]
c.HTMLExporter.sanitize_html = True

# `nbgrader collect` copies what students submitted without following the symlinks they plant
# (nbgrader's own copy follows them, as root). See README.md, "Safety".
c.ExchangeFactory.collect = "portbinding.grading.exchange.SafeExchangeCollect"
