# The two commands (see README.md). Each sets up the environment first; the tests also
# need a Chromium for the browser tests, which ensure-chromium.sh installs on CI runners.
.PHONY: demo test

demo:
	./scripts/with-env.sh python -m mtlkit demo

test:
	./scripts/ensure-chromium.sh
	./scripts/with-env.sh python -m pytest
