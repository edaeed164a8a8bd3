# The two commands (see README.md). Each sets up the environment first; the tests also
# need a Chromium for the browser tests, which ensure-chromium.sh installs on CI runners.
# `make launch-links` points every Colab/Binder link and install cell at [tool.mtlkit] in
# pyproject.toml (for a fork).
.PHONY: demo test launch-links

demo:
	./scripts/with-env.sh python -m mtlkit demo

test:
	./scripts/ensure-chromium.sh
	./scripts/with-env.sh python -m pytest

launch-links:
	./scripts/with-env.sh python scripts/launch_links.py
