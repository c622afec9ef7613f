"""First-party optional plugins, each found through the ``soberana.plugins`` entry point."""
