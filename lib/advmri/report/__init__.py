"""Reporting: volume-clustered statistics (stats), the paper's tables and tested claims (analysis, claims, checks,
beyond), figures, numbers for the article (values), the article itself (book, paper), robustness cards and the
leaderboard (card, leaderboard), model cards (modelcard).
"""

__all__ = [
    "analysis",
    "beyond",
    "book",
    "card",
    "checks",
    "claims",
    "figures",
    "leaderboard",
    "modelcard",
    "paper",
    "stats",
    "values",
]
