//! Parsing: expression text into the tree of [`Node`]s, with errors that give the column.

use super::*;

/// The tree of an expression's text, or what is wrong with it and where.
pub(super) fn tree(source: &str) -> std::result::Result<Node, String> {
    let toks = tokenize(source)?;
    if toks.is_empty() {
        return Err("empty expression".into());
    }
    if toks.len() > MAX_TOKENS {
        return Err(format!("{} tokens; an expression has at most {MAX_TOKENS}", toks.len()));
    }
    let mut parser = Parser { toks, pos: 0, len: source.chars().count(), depth: 0 };
    let root = parser.or()?;
    if parser.pos < parser.toks.len() {
        return Err(format!("unexpected text at column {}", parser.col()));
    }
    let depth = depth(&root);
    if depth > MAX_DEPTH {
        return Err(format!("nested {depth} levels deep; an expression nests at most {MAX_DEPTH}"));
    }
    Ok(root)
}

/// Tokens an expression may have. With [`MAX_DEPTH`], it keeps every walk of the tree (checking,
/// evaluating, printing, building the polars expression, dropping it) far from the end of a
/// thread's stack: found by fuzzing, `((((...1` a few thousand deep overflowed it.
const MAX_TOKENS: usize = 4096;

/// Levels an expression's tree may nest (parentheses, operators, calls).
const MAX_DEPTH: usize = 128;

/// The depth of a tree, walked with a stack of its own (no recursion).
fn depth(root: &Node) -> usize {
    let mut stack = vec![(root, 1)];
    let mut deepest = 0;
    while let Some((node, d)) = stack.pop() {
        deepest = deepest.max(d);
        match node {
            Node::Lit(_) | Node::Col(_) => {}
            Node::Neg(c) | Node::Not(c) => stack.push((c, d + 1)),
            Node::Bin(_, a, b) => stack.extend([(&**a, d + 1), (&**b, d + 1)]),
            Node::Call(_, args, _) => stack.extend(args.iter().map(|a| (a, d + 1))),
        }
    }
    deepest
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64, bool),
    Str(String),
    Ident(String),
    Quoted(String),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
}

impl std::fmt::Display for Tok {
    /// As a user wrote it, for errors.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tok::Num(n, _) => write!(f, "number {n}"),
            Tok::Str(s) => write!(f, "text {s:?}"),
            Tok::Ident(name) | Tok::Quoted(name) => write!(f, "column `{name}`"),
            Tok::Op(op) => write!(f, "`{op}`"),
            Tok::LParen => f.write_str("`(`"),
            Tok::RParen => f.write_str("`)`"),
            Tok::Comma => f.write_str("`,`"),
        }
    }
}

fn tokenize(src: &str) -> std::result::Result<Vec<(usize, Tok)>, String> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(len) = date_literal_len(&chars[i..]) {
            out.push((start, Tok::Str(chars[i..i + len].iter().collect())));
            i += len;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            let mut is_float = false;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_') {
                is_float |= chars[i] == '.';
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    is_float = true;
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            let v: f64 = text.parse().map_err(|_| format!("bad number `{text}` at column {}", start + 1))?;
            out.push((start, Tok::Num(v, is_float)));
            continue;
        }
        if c == '\'' || c == '"' || c == '`' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(format!("unterminated {c} quote starting at column {}", start + 1)),
                    Some(&d) if d == c => {
                        if chars.get(i + 1) == Some(&c) {
                            s.push(c);
                            i += 2;
                        } else {
                            i += 1;
                            break;
                        }
                    }
                    Some(&d) => {
                        s.push(d);
                        i += 1;
                    }
                }
            }
            out.push((start, if c == '`' { Tok::Quoted(s) } else { Tok::Str(s) }));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((start, Tok::Ident(chars[start..i].iter().collect())));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op2 = ["==", "!=", "<>", "<=", ">=", "&&", "||"].into_iter().find(|op| *op == two);
        if let Some(op) = op2 {
            out.push((start, Tok::Op(if op == "<>" { "!=" } else { op })));
            i += 2;
            continue;
        }
        let tok = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '%' => Tok::Op("%"),
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '!' => Tok::Op("!"),
            '=' => return Err(format!("single `=` at column {}; use `==` to compare", start + 1)),
            other => return Err(format!("unexpected character `{other}` at column {}", start + 1)),
        };
        out.push((start, tok));
        i += 1;
    }
    Ok(out)
}

/// Length of a bare date or timestamp at the start of `chars` (`2023-01-31`, `2023-01-31T08:30`,
/// `2023-01-31 08:30:00`), if there is one.
fn date_literal_len(chars: &[char]) -> Option<usize> {
    let digits = |from: usize, n: usize| (from..from + n).all(|k| chars.get(k).is_some_and(char::is_ascii_digit));
    if !(digits(0, 4) && chars.get(4) == Some(&'-') && digits(5, 2) && chars.get(7) == Some(&'-') && digits(8, 2)) {
        return None;
    }
    let mut len = 10;
    if matches!(chars.get(10), Some('T' | ' ')) && digits(11, 2) && chars.get(13) == Some(&':') && digits(14, 2) {
        len = 16;
        if chars.get(16) == Some(&':') && digits(17, 2) {
            len = 19;
        }
    }
    let next = chars.get(len);
    (!next.is_some_and(|c| c.is_alphanumeric() || *c == '_')).then_some(len)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    len: usize,
    /// How deep the parse has recursed (parentheses, calls, prefix operators).
    depth: usize,
}

impl Parser {
    /// One level deeper, refused past [`MAX_DEPTH`] before the recursion can exhaust the stack.
    fn deeper(&mut self) -> std::result::Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep at column {}", self.col()));
        }
        Ok(())
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.len + 1, |(c, _)| c + 1)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }
    fn is_op(&self, ops: &[&str]) -> Option<&'static str> {
        match self.peek() {
            Some(Tok::Op(op)) if ops.contains(op) => Some(op),
            Some(Tok::Ident(word)) => {
                let op = match word.to_ascii_lowercase().as_str() {
                    "and" => "&&",
                    "or" => "||",
                    "not" => "!",
                    _ => return None,
                };
                ops.contains(&op).then_some(op)
            }
            _ => None,
        }
    }

    fn or(&mut self) -> std::result::Result<Node, String> {
        self.deeper()?;
        let node = self.or_chain();
        self.depth -= 1;
        node
    }
    fn or_chain(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.and()?;
        while self.is_op(&["||"]).is_some() {
            self.pos += 1;
            left = Node::Bin(BinOp::Or, Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }
    fn and(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.not()?;
        while self.is_op(&["&&"]).is_some() {
            self.pos += 1;
            left = Node::Bin(BinOp::And, Box::new(left), Box::new(self.not()?));
        }
        Ok(left)
    }
    fn not(&mut self) -> std::result::Result<Node, String> {
        if self.is_op(&["!"]).is_some() {
            self.pos += 1;
            self.deeper()?;
            let inner = self.not();
            self.depth -= 1;
            return Ok(Node::Not(Box::new(inner?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> std::result::Result<Node, String> {
        let left = self.add()?;
        if let Some(Tok::Ident(word)) = self.peek() {
            let func = match word.to_ascii_lowercase().as_str() {
                "contains" => Some(Func::Contains),
                "starts_with" | "startswith" => Some(Func::StartsWith),
                "ends_with" | "endswith" => Some(Func::EndsWith),
                _ => None,
            };
            if let Some(func) = func {
                self.pos += 1;
                let right = self.add()?;
                return Ok(Node::Call(func, vec![left, right], None));
            }
        }
        if let Some(op) = self.is_op(&["==", "!=", "<", "<=", ">", ">="]) {
            self.pos += 1;
            let op = match op {
                "==" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                _ => BinOp::Ge,
            };
            let right = self.add()?;
            return Ok(Node::Bin(op, Box::new(left), Box::new(right)));
        }
        Ok(left)
    }
    fn add(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.mul()?;
        while let Some(op) = self.is_op(&["+", "-"]) {
            self.pos += 1;
            let op = if op == "+" { BinOp::Add } else { BinOp::Sub };
            left = Node::Bin(op, Box::new(left), Box::new(self.mul()?));
        }
        Ok(left)
    }
    fn mul(&mut self) -> std::result::Result<Node, String> {
        let mut left = self.unary()?;
        while let Some(op) = self.is_op(&["*", "/", "%"]) {
            self.pos += 1;
            let op = match op {
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                _ => BinOp::Mod,
            };
            left = Node::Bin(op, Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }
    fn unary(&mut self) -> std::result::Result<Node, String> {
        if self.is_op(&["-"]).is_some() {
            self.pos += 1;
            self.deeper()?;
            let inner = self.unary();
            self.depth -= 1;
            return Ok(match inner? {
                Node::Lit(Value::Float(v)) => Node::Lit(Value::Float(-v)),
                Node::Lit(Value::Int(v)) => Node::Lit(Value::Int(-v)),
                other => Node::Neg(Box::new(other)),
            });
        }
        self.primary()
    }
    fn primary(&mut self) -> std::result::Result<Node, String> {
        let col = self.col();
        match self.next() {
            Some(Tok::Num(v, is_float)) => Ok(if !is_float && v.abs() < 9.0e15 {
                #[allow(clippy::cast_possible_truncation)]
                Node::Lit(Value::Int(v as i64))
            } else {
                Node::Lit(Value::Float(v))
            }),
            Some(Tok::Str(s)) => Ok(Node::Lit(Value::Str(s))),
            Some(Tok::Quoted(name)) => Ok(Node::Col(name)),
            Some(Tok::Ident(name)) => {
                if matches!(name.to_ascii_lowercase().as_str(), "and" | "or" | "contains" | "starts_with" | "ends_with")
                {
                    return Err(format!("expected a value at column {col}, found `{name}`"));
                }
                match name.as_str() {
                    "true" | "True" | "TRUE" => return Ok(Node::Lit(Value::Bool(true))),
                    "false" | "False" | "FALSE" => return Ok(Node::Lit(Value::Bool(false))),
                    "null" | "NULL" | "None" => return Ok(Node::Lit(Value::Null)),
                    _ => {}
                }
                if self.peek() == Some(&Tok::LParen) {
                    let func = Func::from_name(&name.to_ascii_lowercase())
                        .ok_or_else(|| format!("unknown function `{name}` at column {col}"))?;
                    self.pos += 1;
                    let mut args = Vec::new();
                    if self.peek() != Some(&Tok::RParen) {
                        loop {
                            args.push(self.or()?);
                            match self.next() {
                                Some(Tok::Comma) => continue,
                                Some(Tok::RParen) => break,
                                _ => {
                                    return Err(format!(
                                        "expected `,` or `)` in call to `{name}` at column {}",
                                        self.toks.get(self.pos - 1).map_or(self.len + 1, |(c, _)| c + 1)
                                    ));
                                }
                            }
                        }
                    } else {
                        self.pos += 1;
                    }
                    let (lo, hi) = func.arity();
                    if args.len() < lo || args.len() > hi {
                        let want = if lo == hi { lo.to_string() } else { format!("{lo} to {hi}") };
                        return Err(format!("`{name}` takes {want} argument(s), got {}", args.len()));
                    }
                    Ok(Node::Call(func, args, None))
                } else {
                    Ok(Node::Col(name))
                }
            }
            Some(Tok::LParen) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::RParen) => Ok(inner),
                    _ => Err(format!("missing `)` for the `(` at column {col}")),
                }
            }
            Some(other) => Err(format!("unexpected {other} at column {col}; expected a value, a column or `(`")),
            None => Err(format!("unexpected end of expression at column {col}")),
        }
    }
}
