"""Built-in benchmark tasks (each module registers itself on import)."""
