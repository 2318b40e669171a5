"""The thin HTTP layer: authenticate, authorise, validate, store, start workflows."""
