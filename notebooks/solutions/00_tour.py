"""Reference solutions to the checkable exercises of notebook 00. Try the exercises first!

Each answer is what the notebook's stub asks for; ``SOLUTIONS`` maps the exercise id to it,
and ``python -m mtlkit exercises --solutions`` runs every one through its check.
"""

import ast
import copy


def arithmetic_intensity(n, bytes_per_element):
    """Flops per byte of an n x n matrix product: 2n³ flops over 3n² elements moved."""
    flops = 2 * n**3  # n³ multiply-adds, two operations each
    bytes_moved = 3 * n**2 * bytes_per_element  # read A and B, write C
    return flops / bytes_moved


def parameter_names(source):
    """The top-level names a cell assigns, in order (plain or annotated assignments)."""
    names = []
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Assign):
            names.extend(target.id for target in statement.targets if isinstance(target, ast.Name))
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            names.append(statement.target.id)
    return names


def inject_parameters(notebook, parameters):
    """A copy of the notebook with papermill's injected-parameters cell after the parameters cell."""
    injected = copy.deepcopy(notebook)
    tagged = [i for i, cell in enumerate(injected["cells"]) if "parameters" in cell["metadata"].get("tags", [])]
    position = tagged[0] + 1 if tagged else 0
    source = "# Parameters\n" + "".join(f"{name} = {value!r}\n" for name, value in parameters.items())
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"tags": ["injected-parameters"]},
            "outputs": [], "source": source}
    injected["cells"].insert(position, cell)
    return injected


SOLUTIONS = {
    "00.1": arithmetic_intensity,
    "00.2": parameter_names,
    "00.3": inject_parameters,
}
