"""Counts in words that agree with their number, for messages people read."""


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``counted(1, "token")`` is "1 token", ``counted(2, "token")`` "2 tokens"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
