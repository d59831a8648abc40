"""The audit report in three forms: terminal (rich), JSON and one offline HTML file."""

from preflab.audit.report.html_report import render_html
from preflab.audit.report.json_report import report_to_json, to_jsonable
from preflab.audit.report.terminal import print_report

__all__ = ["print_report", "render_html", "report_to_json", "to_jsonable"]
