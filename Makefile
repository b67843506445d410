# Shortcuts for the scripts in .ci/ (which work without make too).
.PHONY: demo test ci
demo:  ## start the whole system with a simulated IOC and demo data
	bash .ci/demo
test:  ## run the test suite
	bash .ci/test
ci:
	bash .ci/run
