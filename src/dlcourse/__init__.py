"""dlcourse: the shared package behind the course's lab notebooks.

Notebooks hold prose, parameters and calls; the logic lives here, tested once.
"""

__version__ = "0.1.0"
