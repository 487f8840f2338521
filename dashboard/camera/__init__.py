"""Camera stills on the dashboard: the nodes' signed upload, encrypted storage, the integrity
check against the signed camera.still event, retention, and the views (door log, review item)."""
