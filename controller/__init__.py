"""secroom controller: the node runtime, door and printer features, and the CLI."""
