"""One workflow per file. Inputs and results are IDs only (DESIGN.md rule 2)."""
