"""Server-rendered pages and the JSON API, one router per resource (composed by
:func:`dashboard.app.create_app`), and the kit they share (deps, forms)."""
