"""E-mail notifications for people who were away: queueing rules, digests, unsubscribing."""
