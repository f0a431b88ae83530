"""The report stage: statistics and plots of a dataset and its run, as one self-contained HTML page.

    config  ReportConfig
    stage   build_report(inputs, out_dir): stats.json, figures, report.html
    data    what the report reads from run directories; plots, html: the figures and the page
"""

from ..core.stage import StageSpec
from .config import ReportConfig
from .step import run

SPEC = StageSpec("report", ReportConfig, run, produces_data=False,
                 help="statistics and plots as one HTML page")
