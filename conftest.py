"""In a clone of this repository, pytest loads the suite's plugin from here; installed, the
package's ``pytest11`` entry point loads the same module (under the same name, so never twice).
Everything lives in conformance/plugin.py."""

pytest_plugins = ["conformance.plugin"]
