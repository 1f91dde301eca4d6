import subprocess
import sys


def test_import_advisor_does_not_pull_heavy_packages():
    code = ("import sys, advisor; advisor.recommend(1e17); "
            "heavy = [m for m in ('torch', 'gymnasium', 'mujoco', 'calibration', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
