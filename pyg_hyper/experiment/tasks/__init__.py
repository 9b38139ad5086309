"""Built-in tasks of the experiment runner (imported lazily on look-up)."""
