"""Applications at the edge: the advmri command line (cli, attack, benchmark), the main job (pipeline), the epsilon
explorer (widgets, live, explore), JupyterLab and Voila servers (lab, servers), the environment check (envcheck).
"""

__all__ = [
    "attack",
    "benchmark",
    "cli",
    "envcheck",
    "explore",
    "lab",
    "live",
    "pipeline",
    "replay",
    "servers",
    "widgets",
]
