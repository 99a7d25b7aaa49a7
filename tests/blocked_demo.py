"""A ``python -c`` script that runs a ``pfstui`` command where the demo's storage classes and formatters cannot
be imported, as on a production host without drp_stella; shared by the tests that prove pfstui reads or copies
products without them.

argv: REPO COLLECTION DATASETTYPE PFSTUI-ARGS...  The script first checks that a dataset of DATASETTYPE in
COLLECTION really cannot be read here (else the test would prove nothing), then runs ``pfstui PFSTUI-ARGS``.
"""

SCRIPT = """
import sys

class NoDemoStorage:
    '''Stands for a host without drp_stella: the demo's storage classes and formatters cannot be imported.'''

    def find_spec(self, name, path=None, target=None):
        if name == "pfstui.demo.storage":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoDemoStorage())
from lsst.daf.butler import Butler

repo, collection, dataset_type = sys.argv[1:4]
with Butler.from_config(repo) as butler:
    ref = next(iter(butler.query_datasets(dataset_type, collections=collection, limit=1)))
    try:
        butler.get(ref)
    except Exception as exc:
        print(f"this process cannot read a {dataset_type}: {type(exc).__name__}", flush=True)
    else:
        sys.exit(f"the demo's {dataset_type} classes are importable here: the test would prove nothing")

from pfstui.cli.main import main

sys.exit(main(sys.argv[4:]))
"""
