"""A tiny Django app for the changetrail.django tests."""
