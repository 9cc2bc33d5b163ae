//! Text for the self-contained HTML reports (EDA, evaluation): escaping and number formatting.

/// Text made safe for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number for a table cell or an axis: integers plainly, others to 4 significant digits without
/// trailing zeros.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{v:.0}");
    }
    let magnitude = v.abs();
    if magnitude != 0.0 && !(1e-3..1e7).contains(&magnitude) {
        return format!("{v:.3e}");
    }
    let digits = (3 - magnitude.log10().floor() as i32).clamp(0, 6) as usize;
    let text = format!("{v:.digits$}");
    // 2.500 reads like two thousand five hundred in much of the world: drop trailing zeros.
    if text.contains('.') { text.trim_end_matches('0').trim_end_matches('.').to_string() } else { text }
}

/// The stylesheet of every report: a fixed contents list on the left, sections as cards, compact
/// tables.
pub const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1f2933;background:#f7f8fa}\
header{background:#1f3a5f;color:#fff;padding:18px 32px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;opacity:.85}\
nav{position:fixed;top:0;bottom:0;left:0;width:210px;overflow:auto;background:#fff;border-right:1px solid #dde2e8;padding:16px;box-sizing:border-box;font-size:14px}\
nav a{color:#1f3a5f;text-decoration:none;display:block;padding:2px 0}nav ul{list-style:none;padding-left:0;margin:0}nav ul ul{padding-left:12px;font-size:13px}\
main,header{margin-left:210px}main{padding:8px 32px 48px}section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px 20px;margin:16px 0}\
h2{font-size:19px;margin:6px 0 12px}h3{font-size:16px;margin:16px 0 8px}table{border-collapse:collapse;font-size:13px;margin:6px 0}\
td,th{border-bottom:1px solid #e6e9ee;padding:3px 10px;text-align:right}th{background:#f0f3f7}td:first-child,th:first-child{text-align:left}\
.var{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start;border-top:1px solid #e6e9ee;padding-top:8px}.warn{color:#9a3412}\
.tag{display:inline-block;background:#e8eef6;border-radius:4px;padding:0 6px;font-size:12px;margin-left:6px}figure{margin:8px 0}figcaption{font-size:13px;color:#52606d}\
svg{max-width:100%;height:auto}.var figure svg{width:560px}";
