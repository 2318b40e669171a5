"""Activities grouped by the client they need, as methods of classes given their clients."""

# The core package sets the process environment (litellm's offline price map, see
# iaf/__init__.py); importing it here runs that before any activity module imports litellm.
import iaf  # noqa: F401
