"""Renders and lints Helm charts with Helm's own library (helm-python-sdk, Helm v4 through its C
ABI: no helm binary, no cluster, no network) and turns YAML into JSON, for
tests/e2e/packaging.rs, which has no YAML parser of its own.

    helm_render.py render CHART [-f VALUES.yaml]... [--name N] [--namespace NS] < overrides.json
    helm_render.py lint CHART [-f VALUES.yaml]... < overrides.json
    helm_render.py yaml FILE            (FILE `-`: standard input)

`render` and `lint` take values as `helm template -f ... --set-json` would: the files in order,
then the JSON object on standard input (may be empty), each merged over the one before (maps
key by key, anything else replaced). `render` answers {"ok": true, "manifests": [{"template",
"object"}], "notes"} or {"ok": false, "error"} when Helm refuses the values or a template fails
(schema violations included, as `helm install` checks them); `lint` answers Helm's lint report
(strict: warnings count); `yaml` answers the list of the file's documents. Anything else going
wrong exits 1 with a traceback. Needs PYTHONPATH to hold helm_python and yaml
(scripts/test-env.sh's packaging tools).
"""

import argparse
import json
import sys

import yaml


def merge(base, override):
    """`override` over `base`: maps merged key by key, anything else replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    return override


def load_values(files):
    values = {}
    for path in files:
        with open(path, encoding="utf-8") as f:
            values = merge(values, yaml.safe_load(f) or {})
    overrides = sys.stdin.read().strip()
    if overrides:
        values = merge(values, json.loads(overrides))
    return values


def render(helm, args):
    values = load_values(args.values)
    try:
        with helm.Chart.load(args.chart) as chart:
            rendered = chart.render(values=values, name=args.name, namespace=args.namespace)
    except helm.HelmError as error:
        return {"ok": False, "error": str(error)}
    manifests, notes = [], ""
    for template, text in sorted(rendered.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        for document in yaml.safe_load_all(text):
            if document is not None:
                manifests.append({"template": template, "object": document})
    return {"ok": True, "manifests": manifests, "notes": notes}


def lint(helm, args):
    values = load_values(args.values)
    return helm.lint(args.chart, values, strict=True, namespace=args.namespace)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("render", "lint"):
        command = commands.add_parser(name)
        command.add_argument("chart")
        command.add_argument("-f", "--values", action="append", default=[])
        command.add_argument("--name", default="release")
        command.add_argument("--namespace", default="default")
    commands.add_parser("yaml").add_argument("file")
    args = parser.parse_args()

    if args.command == "yaml":
        source = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")
        with source:
            answer = [document for document in yaml.safe_load_all(source)]
    else:
        import helm_python as helm

        # The library logs template `fail` calls (which lint tolerates) on stderr; the answer
        # alone is what the tests read.
        helm.disable_logging()
        answer = render(helm, args) if args.command == "render" else lint(helm, args)
    # default=str: a YAML timestamp or date stays its text.
    json.dump(answer, sys.stdout, default=str)


if __name__ == "__main__":
    main()
