"""Helpers shared by the experiment tests."""


def with_overrides(*groups):
    """Concatenates override lists, a later ``key=value`` replacing an
    earlier one of the same key (the command line warns on repeats)."""
    merged = {}
    for group in groups:
        for text in group:
            merged[text.split('=', 1)[0]] = text
    return list(merged.values())
