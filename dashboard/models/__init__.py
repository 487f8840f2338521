"""Dashboard models. Import every model module here so Base.metadata is complete."""
