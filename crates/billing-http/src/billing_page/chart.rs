//! A metric's usage per day as an inline SVG bar chart, drawn here (no script, no CDN): the previous period's
//! days, then the current period's up to today. Colours come from the page's stylesheet (`.bar-prev`,
//! `.bar-cur`), so the chart follows the accent.

use chrono::NaiveDate;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 160.0;
/// Room under the bars for the date labels.
const AXIS: f64 = 22.0;

/// One day's value; `current` when the day is in the current period.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: NaiveDate,
    pub value: f64,
    pub current: bool,
}

/// Escapes text for SVG (XML) content and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A number as a label: whole numbers plain, others to two decimals.
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 { format!("{value:.0}") } else { format!("{value:.2}") }
}

/// The chart of `days`, named by `label` for screen readers (`id` keeps its title unique on the page).
pub fn render(id: &str, label: &str, days: &[Day]) -> String {
    let peak = days.iter().map(|d| d.value).fold(0.0, f64::max);
    let slot = WIDTH / days.len().max(1) as f64;
    let plot = HEIGHT - AXIS;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title" preserveAspectRatio="none"><title id="{id}-title">{}</title>"#,
        escape(label)
    );
    svg.push_str(&format!(r#"<line class="axis" x1="0" y1="{plot}" x2="{WIDTH}" y2="{plot}"/>"#));
    for (i, day) in days.iter().enumerate() {
        let height = if peak > 0.0 { (day.value / peak) * (plot - 12.0) } else { 0.0 };
        let class = if day.current { "bar-cur" } else { "bar-prev" };
        svg.push_str(&format!(
            r#"<rect class="{class}" x="{:.2}" y="{:.2}" width="{:.2}" height="{:.2}"/>"#,
            i as f64 * slot + slot * 0.15,
            plot - height,
            slot * 0.7,
            height
        ));
    }
    // Dates at the first day, where the current period starts, and at the last day.
    let start = days.iter().position(|d| d.current);
    let marks = [Some(0), start.filter(|&s| s > 0), days.len().checked_sub(1)];
    let mut labelled = Vec::new();
    for i in marks.into_iter().flatten().filter(|i| *i < days.len()) {
        if labelled.contains(&i) {
            continue;
        }
        labelled.push(i);
        let x = (i as f64 * slot + slot / 2.0).clamp(30.0, WIDTH - 30.0);
        svg.push_str(&format!(
            r#"<text class="tick" x="{x:.2}" y="{}" text-anchor="middle">{}</text>"#,
            HEIGHT - 6.0,
            days[i].date.format("%m-%d")
        ));
    }
    svg.push_str(&format!(r#"<text class="tick" x="4" y="12">{}</text>"#, escape(&number(peak))));
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32, value: f64, current: bool) -> Day {
        Day { date: NaiveDate::from_ymd_opt(2026, 11, d).unwrap(), value, current }
    }

    #[test]
    fn bars_scale_to_the_peak_and_the_label_is_escaped() {
        let svg = render("c1", "alerts <per> day", &[day(1, 2.0, false), day(2, 4.0, true), day(3, 0.0, true)]);
        assert!(svg.contains("<title id=\"c1-title\">alerts &lt;per&gt; day</title>"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("class=\"bar-cur\"").count(), 2);
        // The peak bar fills the plot (160 - 22 - 12 = 126); half of it is 63.
        assert!(svg.contains("height=\"126.00\""), "{svg}");
        assert!(svg.contains("height=\"63.00\""), "{svg}");
        assert!(svg.contains(">11-02<"), "the current period's first day is marked: {svg}");
    }

    #[test]
    fn an_empty_chart_draws_no_bar_and_does_not_divide_by_zero() {
        let svg = render("c2", "none", &[day(1, 0.0, true)]);
        assert!(svg.contains("height=\"0.00\"") && !svg.contains("NaN"), "{svg}");
        assert_eq!(number(2.5), "2.50");
        assert_eq!(number(3.0), "3");
    }
}
