//! Tables of HTML pages, read as `pandas.read_html` reads them (its lxml flavour): tables in
//! document order (nested ones too) whose text matches `match`, hidden ones (`display: none`)
//! left out; a table's own rows (not a nested table's); header rows from `<thead>`, else the
//! leading rows made only of `<th>` cells; `colspan` and `rowspan` copied into every cell they
//! cover, across the head, body and foot; `<br>` as a line break and whitespace collapsed;
//! ragged rows padded; then each column typed as the CSV reader types one (missing texts,
//! integers, floats with `,` as a thousands separator, booleans, text).

use std::collections::HashMap;

use ego_tree::NodeRef;
use mlops_core::Value;
use polars::prelude::DataFrame;
use scraper::{ElementRef, Html, Node, Selector};

use crate::config::HtmlTableSource;
use crate::error::{IngestError, Result};
use crate::records::Columns;

fn failed(origin: &str, message: String) -> IngestError {
    IngestError::Html { origin: origin.to_string(), message }
}

fn is(node: &NodeRef<'_, Node>, name: &str) -> bool {
    node.value().as_element().is_some_and(|e| e.name() == name)
}

/// Whether an element is hidden by its own `style` (what pandas' `displayed_only` drops).
fn hidden(node: &NodeRef<'_, Node>) -> bool {
    node.value().as_element().and_then(|e| e.attr("style")).is_some_and(|s| s.replace(' ', "").contains("display:none"))
}

/// The text of a cell as lxml's `text_content` gives it, a `<br>` as a line break, hidden
/// elements and stylesheets left out.
fn text_of(node: NodeRef<'_, Node>, out: &mut String) {
    for child in node.children() {
        match child.value() {
            Node::Text(t) => out.push_str(t),
            Node::Element(e) if e.name() == "br" => out.push('\n'),
            Node::Element(e) if e.name() == "style" || hidden(&child) => {}
            Node::Element(_) => text_of(child, out),
            _ => {}
        }
    }
}

/// pandas' `_remove_whitespace`: trimmed, then each run of line breaks, or of two or more
/// whitespace characters (line breaks included), made one space (`[\r\n]+|\s{2,}`).
fn collapse(text: &str) -> String {
    let chars: Vec<char> = text.trim().chars().collect();
    let mut out = String::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\r' || c == '\n' {
            while i < chars.len() && (chars[i] == '\r' || chars[i] == '\n') {
                i += 1;
            }
            out.push(' ');
        } else if c.is_whitespace() && chars.get(i + 1).is_some_and(|n| n.is_whitespace()) {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// A span that a cell's `rowspan` carries into later rows: its column, text and rows left.
type Carried = (usize, String, usize);

fn span(cell: &ElementRef<'_>, name: &str) -> usize {
    cell.value().attr(name).and_then(|v| v.trim().parse::<usize>().ok()).filter(|n| *n > 0).unwrap_or(1)
}

/// A carried cell into this row's `texts`, and into the next row's carry while its `rowspan`
/// lasts.
fn carry((at, text, left): Carried, texts: &mut Vec<String>, next: &mut Vec<Carried>) {
    if left > 1 {
        next.push((at, text.clone(), left - 1));
    }
    texts.push(text);
}

/// pandas' `_expand_colspan_rowspan`: rows of texts, with what rowspans carry on.
fn expand(rows: &[ElementRef<'_>], mut remainder: Vec<Carried>, overflow: bool) -> (Vec<Vec<String>>, Vec<Carried>) {
    let mut all = Vec::new();
    for tr in rows {
        let mut texts = Vec::new();
        let mut next = Vec::new();
        let mut index = 0;
        for td in cells(tr) {
            while remainder.first().is_some_and(|r| r.0 <= index) {
                carry(remainder.remove(0), &mut texts, &mut next);
                index += 1;
            }
            let mut raw = String::new();
            text_of(*td, &mut raw);
            let text = collapse(&raw);
            let (rowspan, colspan) = (span(&td, "rowspan"), span(&td, "colspan"));
            for _ in 0..colspan {
                texts.push(text.clone());
                if rowspan > 1 {
                    next.push((index, text.clone(), rowspan - 1));
                }
                index += 1;
            }
        }
        for carried in remainder.drain(..) {
            carry(carried, &mut texts, &mut next);
        }
        all.push(texts);
        remainder = next;
    }
    if !overflow {
        while !remainder.is_empty() {
            let mut next = Vec::new();
            let mut texts = Vec::new();
            for carried in remainder.drain(..) {
                carry(carried, &mut texts, &mut next);
            }
            all.push(texts);
            remainder = next;
        }
    }
    (all, remainder)
}

/// The `<td>` and `<th>` children of a row.
fn cells<'a>(tr: &ElementRef<'a>) -> Vec<ElementRef<'a>> {
    tr.children().filter(|c| is(c, "td") || is(c, "th")).filter_map(ElementRef::wrap).collect()
}

/// The table's own rows by section (a nested table's rows belong to it, not to this one).
struct Sections<'a> {
    head: Vec<ElementRef<'a>>,
    body: Vec<ElementRef<'a>>,
    foot: Vec<ElementRef<'a>>,
}

fn sections<'a>(table: ElementRef<'a>) -> Sections<'a> {
    let mut s = Sections { head: Vec::new(), body: Vec::new(), foot: Vec::new() };
    for node in table.descendants().skip(1) {
        if !is(&node, "tr") {
            continue;
        }
        // Its own table, and the section on the way there.
        let mut section = "body";
        let mut own = false;
        for a in node.ancestors() {
            if is(&a, "table") {
                own = a.id() == table.id();
                break;
            }
            if is(&a, "thead") {
                section = "head";
            } else if is(&a, "tfoot") {
                section = "foot";
            }
        }
        if !own || node.ancestors().take_while(|a| a.id() != table.id()).any(|a| hidden(&a)) || hidden(&node) {
            continue;
        }
        let Some(tr) = ElementRef::wrap(node) else { continue };
        match section {
            "head" => s.head.push(tr),
            "foot" => s.foot.push(tr),
            _ => s.body.push(tr),
        }
    }
    s
}

/// The grid of a table's texts and how many of its first rows are the header.
fn grid(table: ElementRef<'_>) -> (Vec<Vec<String>>, usize) {
    let Sections { mut head, mut body, foot } = sections(table);
    if head.is_empty() {
        while body.first().is_some_and(|tr| {
            let c = cells(tr);
            !c.is_empty() && c.iter().all(|td| td.value().name() == "th")
        }) {
            head.push(body.remove(0));
        }
    }
    let (header, rem) = expand(&head, Vec::new(), true);
    let (rows, rem) = expand(&body, rem, !foot.is_empty());
    let (footer, _) = expand(&foot, rem, false);
    let n = header.len();
    let mut all: Vec<Vec<String>> = header.into_iter().chain(rows).chain(footer).collect();
    let width = all.iter().map(Vec::len).max().unwrap_or(0);
    for row in &mut all {
        row.resize(width, String::new());
    }
    (all, n)
}

/// Column names from the header rows: one row's texts, or several joined by a space (a level
/// that repeats the one above, as a `rowspan` makes it, once); an empty name is `Unnamed: i`,
/// and a repeated one gets `.1`, `.2`, ... as pandas names them.
fn names(header: &[Vec<String>], width: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(width);
    for j in 0..width {
        let mut parts: Vec<&str> = Vec::new();
        for row in header {
            let t = row.get(j).map_or("", String::as_str);
            if !t.is_empty() && parts.last() != Some(&t) {
                parts.push(t);
            }
        }
        out.push(if header.is_empty() {
            j.to_string()
        } else if parts.is_empty() {
            format!("Unnamed: {j}")
        } else {
            parts.join(" ")
        });
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for name in &mut out {
        let n = seen.entry(name.clone()).or_insert(0);
        if *n > 0 {
            *name = format!("{name}.{n}");
        }
        *n += 1;
    }
    out
}

/// A number without its thousands separators, when it has them in the right places (`1,234`,
/// `-12,345.5`).
fn without_thousands(t: &str) -> Option<String> {
    let (sign, digits) = t.strip_prefix('-').map_or(("", t), |d| ("-", d));
    let (whole, frac) = digits.split_once('.').map_or((digits, None), |(w, f)| (w, Some(f)));
    let groups: Vec<&str> = whole.split(',').collect();
    let ok = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && frac.is_none_or(|f| f.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| format!("{sign}{}{}", groups.concat(), frac.map(|f| format!(".{f}")).unwrap_or_default()))
}

/// A column's texts typed as the CSV reader types them: missing texts null; all integers,
/// all numbers, all booleans, or text.
fn typed(texts: &[String], null_values: &[String]) -> Vec<Value> {
    let present: Vec<Option<String>> = texts
        .iter()
        .map(|t| (!null_values.iter().any(|n| n == t)).then(|| without_thousands(t).unwrap_or_else(|| t.clone())))
        .collect();
    let all = |f: &dyn Fn(&str) -> bool| present.iter().flatten().all(|t| f(t));
    let bool_of = |t: &str| match t {
        "True" | "TRUE" | "true" => Some(true),
        "False" | "FALSE" | "false" => Some(false),
        _ => None,
    };
    if present.iter().all(Option::is_none) {
        return texts.iter().map(|_| Value::Null).collect();
    }
    if all(&|t| t.trim().parse::<i64>().is_ok()) {
        return present
            .iter()
            .map(|t| t.as_ref().and_then(|t| t.trim().parse().ok()).map_or(Value::Null, Value::Int))
            .collect();
    }
    if all(&|t| mlops_core::ops::parse_float(t).is_some()) {
        return present
            .iter()
            .map(|t| t.as_deref().and_then(mlops_core::ops::parse_float).map_or(Value::Null, Value::Float))
            .collect();
    }
    if all(&|t| bool_of(t).is_some()) {
        return present.iter().map(|t| t.as_deref().and_then(bool_of).map_or(Value::Null, Value::Bool)).collect();
    }
    // Text keeps what the page says (thousands separators included).
    texts.iter().zip(&present).map(|(t, p)| if p.is_some() { Value::Str(t.clone()) } else { Value::Null }).collect()
}

/// Reads the chosen table of `page` (`origin` names it in errors).
pub(crate) fn read(opts: &HtmlTableSource, page: &str, origin: &str) -> Result<DataFrame> {
    let document = Html::parse_document(page);
    let matching = opts
        .matching
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .map_err(|e| IngestError::Config { key: "html_table.match".into(), message: e.to_string() })?;
    let selector = match &opts.selector {
        Some(s) => Selector::parse(s)
            .map_err(|e| IngestError::Config { key: "html_table.selector".into(), message: format!("{s:?}: {e}") })?,
        None => Selector::parse("table").map_err(|e| failed(origin, e.to_string()))?,
    };
    let tables: Vec<ElementRef<'_>> = document
        .select(&selector)
        .filter(|t| t.value().name() == "table")
        .filter(|t| !hidden(t))
        .filter(|t| {
            matching.as_ref().is_none_or(|re| {
                let mut text = String::new();
                text_of(**t, &mut text);
                re.is_match(&text)
            })
        })
        .collect();
    let what = || {
        let mut w = String::from("tables");
        if let Some(s) = &opts.selector {
            w.push_str(&format!(" selected by `{s}`"));
        }
        if let Some(m) = &opts.matching {
            w.push_str(&format!(" matching `{m}`"));
        }
        w
    };
    let Some(table) = tables.get(opts.index).copied() else {
        return Err(failed(
            origin,
            if tables.is_empty() {
                format!("no {} in the page", what())
            } else {
                format!("html_table.index {} but the page has {} {}", opts.index, tables.len(), what())
            },
        ));
    };
    let (mut rows, mut head) = grid(table);
    if let Some(h) = opts.header_row {
        if h >= rows.len() {
            return Err(IngestError::Config {
                key: "html_table.header_row".into(),
                message: format!("row {h}, but the table has {} row(s)", rows.len()),
            });
        }
        rows.drain(..h);
        head = 1;
    }
    let width = rows.first().map_or(0, Vec::len);
    let columns = names(&rows[..head.min(rows.len())], width);
    let body = &rows[head.min(rows.len())..];
    let mut out = Columns::with_names(&columns);
    let typed: Vec<Vec<Value>> =
        (0..width).map(|j| typed(&body.iter().map(|r| r[j].clone()).collect::<Vec<_>>(), &opts.null_values)).collect();
    for i in 0..body.len() {
        out.push(columns.iter().zip(&typed).map(|(c, col)| (c.clone(), col[i].clone())));
    }
    out.finish(std::path::Path::new(origin), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_thousands_as_pandas_reads_them() {
        assert_eq!(collapse("  a \n\n b   c\td\ne "), "a b c\td e");
        assert_eq!(without_thousands("1,234,567.5").as_deref(), Some("1234567.5"));
        assert_eq!(without_thousands("-12,345").as_deref(), Some("-12345"));
        assert_eq!(without_thousands("12,34"), None);
        assert_eq!(without_thousands("a,bcd"), None);
    }
}
