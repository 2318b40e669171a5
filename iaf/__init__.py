"""IAFactory Agents: people and AI agents in shared rooms, long jobs as Temporal workflows."""
