"""Command-line tools that use the running system from outside, as its users do."""
