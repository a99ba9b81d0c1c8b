"""Stage download: puts the four verified IDX files of the chosen dataset into data/idx/."""

import logging

from prunekit import cli, data, files, layout, params, provenance

logger = logging.getLogger("download")


def main() -> None:
    """Fetches the dataset named by ``download.dataset``, verifying every file's MD5.

    Raises:
        params.ParamsError: If params.yaml is invalid.
        data.DatasetError: If no source provides the four verified files.
    """
    settings = params.load_params(["download"])["download"]
    with files.replace_together() as outputs:
        source = data.fetch_dataset(settings.dataset, settings.source_dir,
                                    outputs.directory(layout.DATA_DIR))
        files.write_json(outputs.file(layout.stage_log("download")),
                         provenance.run_record("cpu", settings.dataset, source=str(source)))
    logger.info("%s: four verified IDX files from %s in %s", settings.dataset, source,
                layout.DATA_DIR)


if __name__ == "__main__":
    cli.run_stage(main)
