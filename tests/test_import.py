"""`import imagenb` stays cheap: the heavy libraries load only when used."""

import subprocess
import sys

HEAVY = ("openai", "pandas", "PIL", "ipywidgets", "IPython", "numpy", "httpx2", "sqlite3")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_loads_no_heavy_library():
    assert _loaded_after("import imagenb").isdisjoint(HEAVY)


def test_configure_and_estimate_stay_light():
    loaded = _loaded_after(
        "import imagenb as ig\nig.configure(budget_usd=1)\nig.estimate('a fox', size='16:9')"
    )
    assert loaded.isdisjoint({"openai", "pandas", "ipywidgets", "IPython", "numpy"}), loaded
