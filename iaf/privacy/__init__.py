"""Privacy rules shared by erasure, deletes and the scans: what counts as a copy, as a name."""
