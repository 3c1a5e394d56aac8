//! A metric's usage per day as an inline SVG bar chart, drawn here (no script, no CDN): the previous period's
//! days, then the current period's up to today. Colours come from the page's stylesheet (`.bar-prev`,
//! `.bar-cur`), so the chart follows the accent.

use chrono::NaiveDate;

const WIDTH: f64 = 320.0;
const HEIGHT: f64 = 120.0;
/// Room under the bars for the date labels.
const AXIS: f64 = 20.0;
/// Half the width of an `MM-DD` date at the ticks' font size.
const TICK_HALF_WIDTH: f64 = 18.0;

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
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title"><title id="{id}-title">{}</title>"#,
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
    let mut labelled: Vec<f64> = Vec::new();
    for i in marks.into_iter().flatten().filter(|i| *i < days.len()) {
        let x = (i as f64 * slot + slot / 2.0).clamp(TICK_HALF_WIDTH, WIDTH - TICK_HALF_WIDTH);
        // A date too close to one already written would print over it.
        if labelled.iter().any(|other| (other - x).abs() < 2.0 * TICK_HALF_WIDTH + 4.0) {
            continue;
        }
        labelled.push(x);
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
        // The peak bar fills the plot (120 - 20 - 12 = 88); half of it is 44.
        assert!(svg.contains("height=\"88.00\""), "{svg}");
        assert!(svg.contains("height=\"44.00\""), "{svg}");
        assert!(svg.contains(">11-02<"), "the current period's first day is marked: {svg}");
    }

    #[test]
    fn dates_that_would_print_over_each_other_are_left_out() {
        // The current period starts the day before the last: its date and the last day's would overlap.
        let days: Vec<Day> = (1..=30).map(|d| day(d, 1.0, d >= 29)).collect();
        let svg = render("c3", "a month", &days);
        assert_eq!(svg.matches("class=\"tick\" x=").count() - 1, 2, "first and current start, not the last: {svg}");
        assert!(svg.contains(">11-01<") && svg.contains(">11-29<") && !svg.contains(">11-30<"), "{svg}");
    }

    #[test]
    fn an_empty_chart_draws_no_bar_and_does_not_divide_by_zero() {
        let svg = render("c2", "none", &[day(1, 0.0, true)]);
        assert!(svg.contains("height=\"0.00\"") && !svg.contains("NaN"), "{svg}");
        assert_eq!(number(2.5), "2.50");
        assert_eq!(number(3.0), "3");
    }
}
