"""Activities grouped by the client they need, as methods of classes given their clients."""
