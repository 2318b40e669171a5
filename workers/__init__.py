"""Worker processes: build the clients, register workflows and activities, run the sweep."""
