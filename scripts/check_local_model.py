"""Check that the installed llama-cpp-python can run the bundled model on this CPU.

A wheel compiled for another CPU (or with instructions this kernel does not enable,
such as AMX tiles) loads fine and then dies with "Illegal instruction" at the first
token. ``make local`` runs this after installing and rebuilds portably when it fails.
Exit status: 0 when a one-token completion works, non-zero otherwise.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = """
from llama_cpp import Llama
from gcai.core.llm.local import bundled_model_path
model = Llama(model_path=str(bundled_model_path()), n_ctx=256, verbose=False)
model.create_chat_completion(messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
"""


def main() -> int:
    # A child process: an illegal instruction kills the process, not just a thread.
    done = subprocess.run([sys.executable, "-c", PROBE], check=False, timeout=300)
    if done.returncode != 0:
        print(
            f"The embedded model does not run on this CPU (exit status {done.returncode}).",
            file=sys.stderr,
        )
    return 0 if done.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
