"""Real agent CLIs (installed pinned from npm) run against scripted local model servers."""
