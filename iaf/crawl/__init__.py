"""Knowledge from the web: allowed hosts, robots.txt, fetching with limits, page text, sitemaps."""
