"""Stage check_params: refuses an unknown or invalid key anywhere in params.yaml, before any work.

Every other stage lists only the keys it reads, so a misspelled key would trigger none of them.
This stage depends on the whole file; its output is the same whenever the file is valid, so a
valid change reruns only the stages that read the changed keys.
"""

from prunekit import cli, files, layout, params


def main() -> None:
    """Validates every section of params.yaml and writes :data:`layout.PARAMS_CHECK`.

    Raises:
        params.ParamsError: If params.yaml is missing, malformed or holds an invalid value.
    """
    params.load_params(list(params.SECTIONS))
    with files.replace_together() as outputs:
        outputs.file(layout.PARAMS_CHECK).write_text(f"{params.PARAMS_FILE} is valid\n")


if __name__ == "__main__":
    cli.run_stage(main)
