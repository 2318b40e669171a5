"""The thin HTTP layer: authenticate, authorise, validate, store what is acknowledged, start workflows."""
