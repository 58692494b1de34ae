//! A typed reading of the DWARF of a hot crate's objects into a small type table.
//!
//! Every unit is read in one depth-first pass into a per-unit arena (types, members, variants,
//! the `__hotswap_impl_` subprograms and the statics). Only what is reachable from those
//! subprograms and statics is then named and merged into the table, keyed by its qualified name
//! (`game::Counter`, `alloc::vec::Vec<game::Item, alloc::alloc::Global>`): each codegen unit
//! repeats the types it uses, and the comparison matches the two builds by name anyway.
//!
//! How rustc 1.95 writes what this relies on (DWARF 4, LLVM):
//! - a type sits in `DW_TAG_namespace` DIEs, one per path segment, with its last segment (and
//!   generic arguments, fully qualified) as `DW_AT_name`: `Wrapper<u32>` in `game`. Pointers,
//!   tuples, arrays and fat pointers (`Box<dyn Speak>`, `&[T]`) sit at unit level, their
//!   `DW_AT_name` already the full name (`&mut game::Counter`,
//!   `alloc::boxed::Box<dyn game::Speak, alloc::alloc::Global>`); arrays have no name;
//! - an enum with data is a `DW_TAG_structure_type` holding a `DW_TAG_variant_part`: its
//!   `DW_TAG_member` is the tag (artificial; offset and type give the encoding), and each
//!   `DW_TAG_variant` (`DW_AT_discr_value`, absent for the untagged variant of a niche layout)
//!   holds one member named after the variant whose type is a structure nested in the enum
//!   (`game::Mode::Stopped`, fields `__0`, `__1`… for tuple variants). A fieldless enum is a
//!   `DW_TAG_enumeration_type` with `DW_TAG_enumerator`s;
//! - a free function is a `DW_TAG_subprogram` in its module's namespace; a method of an
//!   inherent impl is declared (`DW_AT_declaration`) inside its type's structure DIE and defined
//!   at unit level with `DW_AT_specification` pointing at that declaration. The declaration has
//!   the return type, the definition has the named parameters.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use gimli::{AttributeValue, DwTag, Reader as _, RunTimeEndian, SectionId, UnitOffset};
use object::{Object, ObjectSection};

/// Prefix of the hidden implementation the `#[hot]` macro generates.
pub(super) const IMPL_PREFIX: &str = "__hotswap_impl_";

pub(super) type TypeId = u32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Struct,
    Union,
    Enum,
    Pointer,
    Array,
    Base,
    Function,
    /// A typedef or a qualifier (`const`, `volatile`…): the type it names.
    Alias,
}

impl Kind {
    pub(super) fn noun(self) -> &'static str {
        match self {
            Kind::Struct => "a struct",
            Kind::Union => "a union",
            Kind::Enum => "an enum",
            Kind::Pointer => "a pointer",
            Kind::Array => "an array",
            Kind::Base => "a primitive type",
            Kind::Function => "a function type",
            Kind::Alias => "an alias",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Field {
    pub name: String,
    /// From the start of the value (for an enum variant's field: of the enum).
    pub offset: Option<u64>,
    pub ty: Option<TypeId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Variant {
    pub name: String,
    /// `None`: the untagged variant of a niche layout (or an enum without a tag).
    pub discriminant: Option<i128>,
    pub fields: Vec<Field>,
}

/// Where an enum keeps its tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Tag {
    pub offset: Option<u64>,
    pub size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Type {
    /// The qualified name, as rustc writes it.
    pub name: String,
    pub kind: Kind,
    pub size: Option<u64>,
    pub align: Option<u64>,
    pub fields: Vec<Field>,
    pub tag: Option<Tag>,
    pub variants: Vec<Variant>,
    /// Every type this one leads to (pointee, fields, variants' fields, template parameters,
    /// element, parameters), without repeats.
    pub edges: Vec<TypeId>,
    /// False while only the name is known (referenced, not yet read).
    pub known: bool,
}

/// A static of the crate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Static {
    /// `game::CONFIG`.
    pub name: String,
    pub ty: Option<TypeId>,
}

/// The types of one build, and the roots that reach them.
/// `PartialEq`: two readings of the same objects are equal (what the tests of kept readings
/// compare), down to the ids.
#[derive(Default, Debug, PartialEq, Eq)]
pub(super) struct TypeTable {
    pub types: Vec<Type>,
    pub by_name: HashMap<String, TypeId>,
    /// Hot functions as the program names them (`game::step`, `game::Counter::bump`): their
    /// parameter types, then the return type.
    pub functions: BTreeMap<String, Vec<TypeId>>,
    /// Statics by linkage (mangled) name.
    pub statics: HashMap<String, Static>,
    pub has_type_info: bool,
    /// Types to read as roots, by qualified name, with what messages say of them (see
    /// `layout::STORAGE_TRAITS`); set before the objects are added.
    pub stored_names: HashMap<String, &'static str>,
    /// Those found, by name.
    pub stored: BTreeMap<String, TypeId>,
}

impl TypeTable {
    pub(super) fn get(&self, name: &str) -> Option<&Type> {
        let id = *self.by_name.get(name)?;
        let ty = &self.types[id as usize];
        ty.known.then_some(ty)
    }

    pub(super) fn name_of(&self, id: Option<TypeId>) -> &str {
        id.map_or("?", |id| self.types[id as usize].name.as_str())
    }

    /// Adds the types of one object file.
    #[cfg(test)]
    pub(super) fn add_object(&mut self, data: &[u8]) -> Result<(), String> {
        self.add(&ObjectTypes::read(data)?);
        Ok(())
    }

    /// Adds the types of one object file, as read by [`ObjectTypes::read`]: the same table as
    /// from the bytes themselves, whether the reading is fresh or kept from another build.
    pub(super) fn add(&mut self, object: &ObjectTypes) {
        for arena in &object.arenas {
            self.has_type_info |= !arena.types.is_empty();
            arena.merge_into(self);
        }
    }

    /// Interns a name, with an empty entry the first time.
    fn intern(&mut self, name: &str) -> TypeId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.types.len() as TypeId;
        self.types.push(Type {
            name: name.to_owned(),
            kind: Kind::Alias,
            size: None,
            align: None,
            fields: Vec::new(),
            tag: None,
            variants: Vec::new(),
            edges: Vec::new(),
            known: false,
        });
        self.by_name.insert(name.to_owned(), id);
        id
    }
}

/// The DWARF of one object file as read, before anything of it is merged into a table: a
/// function of the object's bytes alone (not of the roots, nor of the other objects), so that a
/// build can keep it for the next build's identical objects (see `layout::units`).
pub(super) struct ObjectTypes {
    /// One per DWARF unit, in order.
    arenas: Vec<Arena>,
}

impl ObjectTypes {
    pub(super) fn read(data: &[u8]) -> Result<ObjectTypes, String> {
        let file = object::File::parse(data).map_err(|err| format!("not an object file: {err}"))?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let dwarf = gimli::Dwarf::load(|id| load_section(&file, id, endian))?;
        let mut arenas = Vec::new();
        let mut headers = dwarf.units();
        while let Some(header) = headers.next().map_err(dwarf_error)? {
            let unit = dwarf.unit(header).map_err(dwarf_error)?;
            arenas.push(Arena::read(&dwarf, &unit).map_err(dwarf_error)?);
        }
        Ok(ObjectTypes { arenas })
    }
}

fn dwarf_error(err: gimli::Error) -> String {
    format!("unreadable debug information: {err}")
}

/// Relocations of one section: a relocatable object's `.debug_info` refers to `.debug_str`
/// and `.debug_abbrev` through relocations (RELA on x86_64: the bytes in place are zeros).
///
/// Only absolute relocations are applied (what references between debug sections and to code
/// addresses use). Others are left out rather than refused: a thread-local's location is a
/// `DTPOFF` relocation (`object`'s own map rejects the whole section for it), and locations are
/// never read here, so a value left unrelocated can only be a location nobody looks at.
#[derive(Clone, Debug, Default)]
struct Relocations(Rc<HashMap<u64, u64>>);

impl Relocations {
    fn read(file: &object::File<'_>, section: &object::Section<'_, '_>) -> Relocations {
        use object::{ObjectSymbol, RelocationKind, RelocationTarget};
        let mut map = HashMap::new();
        for (offset, relocation) in section.relocations() {
            if relocation.kind() != RelocationKind::Absolute {
                continue;
            }
            let base = match relocation.target() {
                RelocationTarget::Symbol(index) => match file.symbol_by_index(index) {
                    Ok(symbol) => symbol.address(),
                    Err(_) => continue,
                },
                RelocationTarget::Absolute => 0,
                _ => continue,
            };
            // RELA (x86_64) carries the addend; the bytes in place are zeros.
            map.insert(offset, base.wrapping_add(relocation.addend() as u64));
        }
        Relocations(Rc::new(map))
    }

    fn relocate(&self, offset: u64, value: u64) -> u64 {
        self.0.get(&offset).copied().unwrap_or(value)
    }
}

impl gimli::read::Relocate<usize> for Relocations {
    fn relocate_address(&self, offset: usize, value: u64) -> gimli::Result<u64> {
        Ok(self.relocate(offset as u64, value))
    }

    fn relocate_offset(&self, offset: usize, value: usize) -> gimli::Result<usize> {
        <usize as gimli::ReaderOffset>::from_u64(self.relocate(offset as u64, value as u64))
    }
}

type Reader<'data> = gimli::RelocateReader<gimli::EndianSlice<'data, RunTimeEndian>, Relocations>;

/// The sections a unit's entries and names need; the others (ranges, locations, frames) stay
/// empty, which also spares building their relocation maps.
fn load_section<'data>(
    file: &object::File<'data>,
    id: SectionId,
    endian: RunTimeEndian,
) -> Result<Reader<'data>, String> {
    let empty =
        || gimli::RelocateReader::new(gimli::EndianSlice::new(&[], endian), Relocations::default());
    let needed = matches!(
        id,
        SectionId::DebugInfo
            | SectionId::DebugAbbrev
            | SectionId::DebugStr
            | SectionId::DebugStrOffsets
            | SectionId::DebugLine
            | SectionId::DebugLineStr
            | SectionId::DebugAddr
    );
    let Some(section) = needed.then(|| file.section_by_name(id.name())).flatten() else {
        return Ok(empty());
    };
    let compressed = section
        .compressed_file_range()
        .map_err(|err| format!("section {}: {err}", id.name()))?;
    if compressed.format != object::CompressionFormat::None {
        return Err(format!(
            "section {} is compressed, which is not supported",
            id.name()
        ));
    }
    let data = section
        .data()
        .map_err(|err| format!("section {}: {err}", id.name()))?;
    Ok(gimli::RelocateReader::new(
        gimli::EndianSlice::new(data, endian),
        Relocations::read(file, &section),
    ))
}

// ---------------------------------------------------------------------------------------------
// One unit, as read.

/// A member as read: a struct's field, an enum's tag, or a variant's payload.
#[derive(Default)]
struct Member {
    name: Option<String>,
    offset: Option<u64>,
    ty: Option<usize>,
}

#[derive(Default)]
struct ReadVariant {
    discriminant: Option<i128>,
    member: Option<Member>,
}

struct ReadType {
    tag: DwTag,
    /// Qualified for structures, unions, enums and typedefs; as written for the others.
    name: Option<String>,
    size: Option<u64>,
    align: Option<u64>,
    declaration: bool,
    /// `DW_AT_type`: pointee, element, underlying or return type.
    target: Option<usize>,
    members: Vec<Member>,
    /// Template type parameters and subroutine parameters.
    params: Vec<usize>,
    /// Array dimensions.
    counts: Vec<Option<u64>>,
    has_variant_part: bool,
    tag_member: Option<Member>,
    variants: Vec<ReadVariant>,
    enumerators: Vec<(String, Option<i128>)>,
}

/// A subprogram that is, or may define, a hot function's implementation.
struct ReadSub {
    /// `Some` for a `__hotswap_impl_` subprogram, declared or defined.
    hot: Option<HotSub>,
    /// `DW_AT_specification` / `DW_AT_abstract_origin`.
    specification: Option<usize>,
    params: Vec<usize>,
}

struct HotSub {
    /// The function name without the prefix (`step`).
    name: String,
    /// Where it sits: `game`, or the type for a method (`game::Counter`).
    scope: String,
    linkage: Option<String>,
    ret: Option<usize>,
}

struct ReadStatic {
    linkage: String,
    name: String,
    ty: Option<usize>,
}

/// What an entry's children belong to; every frame also names the scope its children are
/// named in (an index into the unit's scopes).
#[derive(Clone, Copy)]
enum Frame {
    /// The unit or a namespace.
    Scope(usize),
    Type(usize, usize),
    VariantPart(usize, usize),
    Variant(usize, usize, usize),
    Sub(Option<usize>, usize),
    Other(usize),
}

impl Frame {
    fn scope(self) -> usize {
        match self {
            Frame::Scope(scope)
            | Frame::Type(_, scope)
            | Frame::VariantPart(_, scope)
            | Frame::Variant(_, _, scope)
            | Frame::Sub(_, scope)
            | Frame::Other(scope) => scope,
        }
    }
}

/// The attributes of one entry that matter here, read in one pass.
#[derive(Default)]
struct Attributes<'data> {
    name: Option<AttributeValue<Reader<'data>>>,
    linkage: Option<AttributeValue<Reader<'data>>>,
    ty: Option<UnitOffset>,
    specification: Option<UnitOffset>,
    size: Option<u64>,
    align: Option<u64>,
    offset: Option<u64>,
    count: Option<u64>,
    lower: Option<u64>,
    upper: Option<u64>,
    declaration: bool,
    discriminant: Option<i128>,
    value: Option<i128>,
}

struct Arena {
    types: Vec<ReadType>,
    subs: Vec<ReadSub>,
    statics: Vec<ReadStatic>,
}

/// Reads an entry's references to other entries of the same unit. Other forms (a reference
/// into another unit, a type signature) are skipped.
fn unit_ref<R: gimli::Reader<Offset = usize>>(
    value: AttributeValue<R>,
    unit: &gimli::Unit<R>,
) -> Option<UnitOffset> {
    match value {
        AttributeValue::UnitRef(offset) => Some(offset),
        AttributeValue::DebugInfoRef(offset) => offset.to_unit_offset(&unit.header),
        _ => None,
    }
}

/// A constant as a number: data forms are taken unsigned, `sdata` signed, a block (128-bit
/// discriminants) as little-endian bytes.
fn constant<R: gimli::Reader<Offset = usize>>(value: &AttributeValue<R>) -> Option<i128> {
    match value {
        AttributeValue::Sdata(v) => Some(i128::from(*v)),
        AttributeValue::Block(bytes) => {
            let bytes = bytes.to_slice().ok()?;
            if bytes.len() > 16 {
                return None;
            }
            let mut buf = [0u8; 16];
            buf[..bytes.len()].copy_from_slice(&bytes);
            Some(i128::from_le_bytes(buf))
        }
        other => other.udata_value().map(i128::from),
    }
}

fn is_type_tag(tag: DwTag) -> bool {
    matches!(
        tag,
        gimli::DW_TAG_structure_type
            | gimli::DW_TAG_class_type
            | gimli::DW_TAG_union_type
            | gimli::DW_TAG_enumeration_type
            | gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_reference_type
            | gimli::DW_TAG_rvalue_reference_type
            | gimli::DW_TAG_array_type
            | gimli::DW_TAG_base_type
            | gimli::DW_TAG_unspecified_type
            | gimli::DW_TAG_subroutine_type
            | gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type
    )
}

/// Entries whose attributes are read; everything else is walked through unread.
fn wanted(tag: DwTag) -> bool {
    is_type_tag(tag)
        || matches!(
            tag,
            gimli::DW_TAG_namespace
                | gimli::DW_TAG_member
                | gimli::DW_TAG_variant_part
                | gimli::DW_TAG_variant
                | gimli::DW_TAG_enumerator
                | gimli::DW_TAG_subrange_type
                | gimli::DW_TAG_template_type_parameter
                | gimli::DW_TAG_formal_parameter
                | gimli::DW_TAG_subprogram
                | gimli::DW_TAG_variable
        )
}

fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}::{name}")
    }
}

impl Arena {
    fn read<'data>(
        dwarf: &gimli::Dwarf<Reader<'data>>,
        unit: &gimli::Unit<Reader<'data>>,
    ) -> gimli::Result<Arena> {
        let mut arena = Arena {
            types: Vec::new(),
            subs: Vec::new(),
            statics: Vec::new(),
        };
        // Entries referred to by offset, and the references waiting for them.
        let mut index_of: HashMap<UnitOffset, Target> = HashMap::new();
        let mut pending: Vec<(UnitOffset, Slot)> = Vec::new();
        let mut scopes: Vec<String> = vec![String::new()];
        let mut stack: Vec<Frame> = Vec::new();
        let mut depth: isize = 0;
        let string = |value: AttributeValue<Reader<'data>>| -> gimli::Result<String> {
            Ok(dwarf
                .attr_string(unit, value)?
                .to_string_lossy()?
                .into_owned())
        };

        let mut entries = unit.entries();
        while let Some((delta, entry)) = entries.next_dfs()? {
            depth += delta;
            if depth < 0 {
                break;
            }
            stack.truncate(depth as usize);
            let tag = entry.tag();
            let parent = stack.last().copied();
            let parent_scope = parent.map_or(0, Frame::scope);
            if !wanted(tag) || parent.is_none() {
                stack.push(if parent.is_none() {
                    Frame::Scope(0)
                } else {
                    Frame::Other(parent_scope)
                });
                continue;
            }
            let mut at = Attributes::default();
            let mut attrs = entry.attrs();
            while let Some(attr) = attrs.next()? {
                let value = attr.value();
                match attr.name() {
                    gimli::DW_AT_name => at.name = Some(value),
                    gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name => {
                        at.linkage = Some(value)
                    }
                    gimli::DW_AT_type => at.ty = unit_ref(value, unit),
                    gimli::DW_AT_specification | gimli::DW_AT_abstract_origin => {
                        at.specification = unit_ref(value, unit)
                    }
                    gimli::DW_AT_byte_size => at.size = value.udata_value(),
                    gimli::DW_AT_alignment => at.align = value.udata_value(),
                    gimli::DW_AT_data_member_location => at.offset = value.udata_value(),
                    gimli::DW_AT_count => at.count = value.udata_value(),
                    gimli::DW_AT_lower_bound => at.lower = value.udata_value(),
                    gimli::DW_AT_upper_bound => at.upper = value.udata_value(),
                    gimli::DW_AT_declaration => {
                        at.declaration = matches!(value, AttributeValue::Flag(true))
                    }
                    gimli::DW_AT_discr_value => at.discriminant = constant(&value),
                    gimli::DW_AT_const_value => at.value = constant(&value),
                    _ => {}
                }
            }
            // Names are read only where used: not for locals, parameters, or subprograms other
            // than hot implementations (most of a unit's entries).
            let needs_name = match tag {
                gimli::DW_TAG_formal_parameter
                | gimli::DW_TAG_template_type_parameter
                | gimli::DW_TAG_subrange_type
                | gimli::DW_TAG_variant
                | gimli::DW_TAG_variant_part => false,
                gimli::DW_TAG_variable => at.linkage.is_some(),
                gimli::DW_TAG_subprogram => match &at.name {
                    Some(value) => dwarf
                        .attr_string(unit, value.clone())?
                        .to_slice()?
                        .starts_with(IMPL_PREFIX.as_bytes()),
                    None => false,
                },
                _ => true,
            };
            let name = match at.name.take() {
                Some(value) if needs_name => Some(string(value)?),
                _ => None,
            };
            let offset = entry.offset();
            let frame = match (tag, parent) {
                (gimli::DW_TAG_namespace, _) => {
                    let scope = qualify(&scopes[parent_scope], name.as_deref().unwrap_or("_"));
                    scopes.push(scope);
                    Frame::Scope(scopes.len() - 1)
                }
                (tag, _) if is_type_tag(tag) => {
                    let named_in_scope = matches!(
                        tag,
                        gimli::DW_TAG_structure_type
                            | gimli::DW_TAG_class_type
                            | gimli::DW_TAG_union_type
                            | gimli::DW_TAG_enumeration_type
                            | gimli::DW_TAG_typedef
                    );
                    let name = match name {
                        Some(name) if named_in_scope => Some(qualify(&scopes[parent_scope], &name)),
                        other => other,
                    };
                    let index = arena.types.len();
                    index_of.insert(offset, Target::Type(index));
                    if let Some(ty) = at.ty {
                        pending.push((ty, Slot::Target(index)));
                    }
                    let scope = match &name {
                        Some(name) if named_in_scope => {
                            scopes.push(name.clone());
                            scopes.len() - 1
                        }
                        _ => parent_scope,
                    };
                    arena.types.push(ReadType {
                        tag,
                        name,
                        size: at.size,
                        align: at.align,
                        declaration: at.declaration,
                        target: None,
                        members: Vec::new(),
                        params: Vec::new(),
                        counts: Vec::new(),
                        has_variant_part: false,
                        tag_member: None,
                        variants: Vec::new(),
                        enumerators: Vec::new(),
                    });
                    Frame::Type(index, scope)
                }
                (gimli::DW_TAG_member, Some(Frame::Type(index, _))) => {
                    let ty = &mut arena.types[index];
                    let slot = Slot::Member(index, ty.members.len());
                    ty.members.push(Member {
                        name,
                        offset: at.offset,
                        ty: None,
                    });
                    if let Some(target) = at.ty {
                        pending.push((target, slot));
                    }
                    Frame::Other(parent_scope)
                }
                (gimli::DW_TAG_member, Some(Frame::VariantPart(index, _))) => {
                    arena.types[index].tag_member = Some(Member {
                        name,
                        offset: at.offset,
                        ty: None,
                    });
                    if let Some(target) = at.ty {
                        pending.push((target, Slot::TagMember(index)));
                    }
                    Frame::Other(parent_scope)
                }
                (gimli::DW_TAG_member, Some(Frame::Variant(index, variant, _))) => {
                    arena.types[index].variants[variant].member = Some(Member {
                        name,
                        offset: at.offset,
                        ty: None,
                    });
                    if let Some(target) = at.ty {
                        pending.push((target, Slot::Payload(index, variant)));
                    }
                    Frame::Other(parent_scope)
                }
                (gimli::DW_TAG_variant_part, Some(Frame::Type(index, scope))) => {
                    arena.types[index].has_variant_part = true;
                    Frame::VariantPart(index, scope)
                }
                (gimli::DW_TAG_variant, Some(Frame::VariantPart(index, _))) => {
                    let ty = &mut arena.types[index];
                    ty.variants.push(ReadVariant {
                        discriminant: at.discriminant,
                        member: None,
                    });
                    Frame::Variant(index, ty.variants.len() - 1, parent_scope)
                }
                (gimli::DW_TAG_enumerator, Some(Frame::Type(index, _))) => {
                    arena.types[index]
                        .enumerators
                        .push((name.unwrap_or_default(), at.value));
                    Frame::Other(parent_scope)
                }
                (gimli::DW_TAG_subrange_type, Some(Frame::Type(index, _))) => {
                    let count = at.count.or_else(|| {
                        at.upper
                            .map(|upper| upper.wrapping_sub(at.lower.unwrap_or(0)).wrapping_add(1))
                    });
                    arena.types[index].counts.push(count);
                    Frame::Other(parent_scope)
                }
                (
                    gimli::DW_TAG_template_type_parameter | gimli::DW_TAG_formal_parameter,
                    Some(Frame::Type(index, _)),
                ) => {
                    if let Some(target) = at.ty {
                        pending.push((target, Slot::Param(index)));
                    }
                    Frame::Other(parent_scope)
                }
                (gimli::DW_TAG_formal_parameter, Some(Frame::Sub(Some(sub), _))) => {
                    if let Some(target) = at.ty {
                        pending.push((target, Slot::SubParam(sub)));
                    }
                    Frame::Other(parent_scope)
                }
                (gimli::DW_TAG_subprogram, _) => {
                    let hot = name
                        .as_deref()
                        .and_then(|name| name.strip_prefix(IMPL_PREFIX))
                        .filter(|rest| !rest.is_empty());
                    if hot.is_none() && at.specification.is_none() {
                        Frame::Sub(None, parent_scope)
                    } else {
                        let index = arena.subs.len();
                        let hot = match hot {
                            Some(hot) => Some(HotSub {
                                name: hot.to_owned(),
                                scope: scopes[parent_scope].clone(),
                                linkage: match at.linkage.take() {
                                    Some(value) => Some(string(value)?),
                                    None => None,
                                },
                                ret: None,
                            }),
                            None => None,
                        };
                        if hot.is_some() {
                            index_of.insert(offset, Target::Sub(index));
                            if let Some(target) = at.ty {
                                pending.push((target, Slot::SubReturn(index)));
                            }
                        }
                        if let Some(spec) = at.specification {
                            pending.push((spec, Slot::Specification(index)));
                        }
                        arena.subs.push(ReadSub {
                            hot,
                            specification: None,
                            params: Vec::new(),
                        });
                        Frame::Sub(Some(index), parent_scope)
                    }
                }
                (gimli::DW_TAG_variable, _) => {
                    if let (Some(linkage), Some(name)) = (at.linkage.take(), name) {
                        let index = arena.statics.len();
                        arena.statics.push(ReadStatic {
                            linkage: string(linkage)?,
                            name: qualify(&scopes[parent_scope], &name),
                            ty: None,
                        });
                        if let Some(target) = at.ty {
                            pending.push((target, Slot::Static(index)));
                        }
                    }
                    Frame::Other(parent_scope)
                }
                _ => Frame::Other(parent_scope),
            };
            stack.push(frame);
        }

        // Resolve the references now that every entry of the unit has an index.
        for (offset, slot) in pending {
            let Some(&target) = index_of.get(&offset) else {
                continue;
            };
            match (slot, target) {
                (Slot::Specification(sub), Target::Sub(spec)) => {
                    arena.subs[sub].specification = Some(spec)
                }
                (Slot::Specification(_), _) | (_, Target::Sub(_)) => {}
                (slot, Target::Type(ty)) => match slot {
                    Slot::Target(index) => arena.types[index].target = Some(ty),
                    Slot::Member(index, member) => arena.types[index].members[member].ty = Some(ty),
                    Slot::TagMember(index) => {
                        if let Some(member) = &mut arena.types[index].tag_member {
                            member.ty = Some(ty);
                        }
                    }
                    Slot::Payload(index, variant) => {
                        if let Some(member) = &mut arena.types[index].variants[variant].member {
                            member.ty = Some(ty);
                        }
                    }
                    Slot::Param(index) => arena.types[index].params.push(ty),
                    Slot::SubParam(sub) => arena.subs[sub].params.push(ty),
                    Slot::SubReturn(sub) => {
                        if let Some(hot) = &mut arena.subs[sub].hot {
                            hot.ret = Some(ty);
                        }
                    }
                    Slot::Static(index) => arena.statics[index].ty = Some(ty),
                    Slot::Specification(_) => {}
                },
            }
        }
        Ok(arena)
    }

    /// The hot functions of this unit: name as the program knows it, and the types of the
    /// parameters and the return value.
    fn roots(&self) -> Vec<(String, Vec<usize>)> {
        let mut roots = Vec::new();
        for sub in &self.subs {
            // A definition of a declared method points at the declaration, which has the name
            // and the return type; the definition has the parameters.
            let (hot, decl_params) = match (&sub.hot, sub.specification) {
                (Some(hot), _) => (hot, None),
                (None, Some(spec)) => match &self.subs[spec].hot {
                    Some(hot) => (hot, Some(&self.subs[spec].params)),
                    None => continue,
                },
                (None, None) => continue,
            };
            let params = if sub.params.is_empty() {
                decl_params.unwrap_or(&sub.params)
            } else {
                &sub.params
            };
            let mut types = params.clone();
            types.extend(hot.ret);
            roots.push((root_name(hot), types));
        }
        roots
    }

    /// Whether a type is an enum's variant payload (read as part of the enum).
    fn payloads(&self) -> Vec<bool> {
        let mut payload = vec![false; self.types.len()];
        for ty in &self.types {
            for variant in &ty.variants {
                if let Some(index) = variant.member.as_ref().and_then(|m| m.ty) {
                    payload[index] = true;
                }
            }
        }
        payload
    }

    fn edges(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        let ty = &self.types[index];
        ty.target
            .into_iter()
            .chain(ty.members.iter().filter_map(|m| m.ty))
            .chain(ty.params.iter().copied())
            .chain(ty.tag_member.iter().filter_map(|m| m.ty))
            .chain(
                ty.variants
                    .iter()
                    .filter_map(|v| v.member.as_ref().and_then(|m| m.ty)),
            )
    }

    /// Names every type reachable from this unit's roots and statics, and adds them.
    fn merge_into(&self, table: &mut TypeTable) {
        let roots = self.roots();
        let mut reached = vec![false; self.types.len()];
        let stored: Vec<usize> = (0..self.types.len())
            .filter(|&index| {
                let ty = &self.types[index];
                !ty.declaration
                    && ty
                        .name
                        .as_ref()
                        .is_some_and(|name| table.stored_names.contains_key(name))
            })
            .collect();
        let mut queue: Vec<usize> = roots
            .iter()
            .flat_map(|(_, types)| types.iter().copied())
            .chain(self.statics.iter().filter_map(|s| s.ty))
            .chain(stored.iter().copied())
            .collect();
        while let Some(index) = queue.pop() {
            if std::mem::replace(&mut reached[index], true) {
                continue;
            }
            queue.extend(self.edges(index).filter(|&next| !reached[next]));
        }

        let payload = self.payloads();
        let mut names: Vec<Option<Rc<str>>> = vec![None; self.types.len()];
        let mut ids: Vec<Option<TypeId>> = vec![None; self.types.len()];
        for index in 0..self.types.len() {
            if reached[index] && !payload[index] {
                let name = self.name(index, &mut names, 0);
                ids[index] = Some(table.intern(&name));
            }
        }
        let id = |index: Option<usize>| index.and_then(|index| ids[index]);

        for index in 0..self.types.len() {
            let Some(gid) = ids[index] else { continue };
            let ty = &self.types[index];
            if table.types[gid as usize].known || ty.declaration {
                continue;
            }
            let fields = |members: &[Member], base: u64| -> Vec<Field> {
                members
                    .iter()
                    .map(|m| Field {
                        name: m.name.clone().unwrap_or_default(),
                        offset: m.offset.map(|offset| offset.wrapping_add(base)),
                        ty: id(m.ty),
                    })
                    .collect()
            };
            let kind = match ty.tag {
                gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type if ty.has_variant_part => {
                    Kind::Enum
                }
                gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type => Kind::Struct,
                gimli::DW_TAG_union_type => Kind::Union,
                gimli::DW_TAG_enumeration_type => Kind::Enum,
                gimli::DW_TAG_pointer_type
                | gimli::DW_TAG_reference_type
                | gimli::DW_TAG_rvalue_reference_type => Kind::Pointer,
                gimli::DW_TAG_array_type => Kind::Array,
                gimli::DW_TAG_base_type | gimli::DW_TAG_unspecified_type => Kind::Base,
                gimli::DW_TAG_subroutine_type => Kind::Function,
                _ => Kind::Alias,
            };
            let mut edges: Vec<TypeId> = Vec::new();
            let mut variants = Vec::new();
            let mut tag = None;
            if ty.tag == gimli::DW_TAG_enumeration_type {
                tag = Some(Tag {
                    offset: Some(0),
                    size: ty.size,
                });
                variants = ty
                    .enumerators
                    .iter()
                    .map(|(name, value)| Variant {
                        name: name.clone(),
                        discriminant: *value,
                        fields: Vec::new(),
                    })
                    .collect();
            } else if ty.has_variant_part {
                tag = ty.tag_member.as_ref().map(|m| Tag {
                    offset: m.offset,
                    size: m.ty.and_then(|t| self.types[t].size),
                });
                for variant in &ty.variants {
                    let Some(member) = &variant.member else {
                        continue;
                    };
                    let base = member.offset.unwrap_or(0);
                    let (fields, payload_params) = match member.ty {
                        Some(p) => (
                            fields(&self.types[p].members, base),
                            &self.types[p].params[..],
                        ),
                        None => (Vec::new(), &[][..]),
                    };
                    edges.extend(fields.iter().filter_map(|f| f.ty));
                    edges.extend(payload_params.iter().filter_map(|&p| ids[p]));
                    variants.push(Variant {
                        name: member.name.clone().unwrap_or_default(),
                        discriminant: variant.discriminant,
                        fields,
                    });
                }
            }
            let fields = fields(&ty.members, 0);
            edges.extend(self.edges(index).filter_map(|next| ids[next]));
            edges.sort_unstable();
            edges.dedup();
            let entry = &mut table.types[gid as usize];
            entry.kind = kind;
            entry.size = ty.size;
            entry.align = ty.align;
            entry.fields = fields;
            entry.tag = tag;
            entry.variants = variants;
            entry.edges = edges;
            entry.known = true;
        }

        for index in stored {
            if let (Some(gid), Some(name)) = (ids[index], &self.types[index].name) {
                table.stored.entry(name.clone()).or_insert(gid);
            }
        }
        for (name, types) in roots {
            let list = table.functions.entry(name).or_default();
            for index in types {
                if let Some(gid) = ids[index] {
                    if !list.contains(&gid) {
                        list.push(gid);
                    }
                }
            }
        }
        for s in &self.statics {
            let ty = id(s.ty);
            table
                .statics
                .entry(s.linkage.clone())
                .or_insert_with(|| Static {
                    name: s.name.clone(),
                    ty,
                });
        }
    }

    /// The name a type is known by: its own (qualified) name, or one made up for the unnamed
    /// (`[u8; 4]`, `fn(u32) -> u8`, `*const T`).
    fn name(&self, index: usize, names: &mut Vec<Option<Rc<str>>>, depth: usize) -> Rc<str> {
        if let Some(name) = &names[index] {
            return name.clone();
        }
        if depth > 64 {
            return "…".into();
        }
        let ty = &self.types[index];
        let of = |index: Option<usize>, names: &mut Vec<Option<Rc<str>>>| match index {
            Some(index) => self.name(index, names, depth + 1),
            None => "()".into(),
        };
        let name: Rc<str> = match (&ty.name, ty.tag) {
            (Some(name), _) => name.as_str().into(),
            (None, gimli::DW_TAG_array_type) => {
                let mut name = of(ty.target, names).to_string();
                for count in ty.counts.iter().rev() {
                    name = match count {
                        Some(count) => format!("[{name}; {count}]"),
                        None => format!("[{name}]"),
                    };
                }
                name.into()
            }
            (None, gimli::DW_TAG_subroutine_type) => {
                let params: Vec<String> = ty
                    .params
                    .iter()
                    .map(|&p| self.name(p, names, depth + 1).to_string())
                    .collect();
                let ret = match ty.target {
                    Some(_) => format!(" -> {}", of(ty.target, names)),
                    None => String::new(),
                };
                format!("fn({}){ret}", params.join(", ")).into()
            }
            (
                None,
                gimli::DW_TAG_pointer_type
                | gimli::DW_TAG_reference_type
                | gimli::DW_TAG_rvalue_reference_type,
            ) => format!("*const {}", of(ty.target, names)).into(),
            (None, gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type) => "{anonymous}".into(),
            (None, _) => of(ty.target, names),
        };
        names[index] = Some(name.clone());
        name
    }
}

#[derive(Clone, Copy)]
enum Target {
    Type(usize),
    Sub(usize),
}

#[derive(Clone, Copy)]
enum Slot {
    Target(usize),
    Member(usize, usize),
    TagMember(usize),
    Payload(usize, usize),
    Param(usize),
    SubParam(usize),
    SubReturn(usize),
    Static(usize),
    Specification(usize),
}

/// `game::step`; for a method, `game::Counter::bump`, as `#[hot]` names it
/// (`module_path!()::Type::method`). rustc declares a method inside its type, which may live
/// in another module than the impl block: the linkage name says where the impl is
/// (`game::sys::<impl game::model::Counter>::__hotswap_impl_bump` → `game::sys::Counter::bump`).
///
/// A method of a `#[hot] impl Trait for Type` is named `module::<Type as Trait>::method`, with
/// the type's and the trait's last path segments, as `#[hot]` names its entry: its
/// implementation sits in a hidden trait inside the wrapper (see `reach::names::TraitMethod`),
/// in namespaces `module::{impl#N}::method::{impl#M}`.
fn root_name(hot: &HotSub) -> String {
    if let Some(linkage) = &hot.linkage {
        if let Ok(demangled) = rustc_demangle::try_demangle(linkage) {
            let demangled = format!("{demangled:#}");
            if let Some(method) = crate::reach::names::TraitMethod::of_implementation(&demangled) {
                let module = match &method.module {
                    Some(module) => module.clone(),
                    None => match hot.scope.find("::{impl") {
                        Some(at) => hot.scope[..at].to_owned(),
                        None => hot.scope.clone(),
                    },
                };
                return method.entry_name(&module);
            }
            if let Some((module, rest)) = demangled.split_once("::<impl ") {
                if let Some((self_ty, _)) = rest.rsplit_once(">::") {
                    let without_args = self_ty.split('<').next().unwrap_or(self_ty);
                    let ty = without_args.rsplit("::").next().unwrap_or(without_args);
                    return format!("{module}::{ty}::{}", hot.name);
                }
            }
        }
    }
    qualify(&hot.scope, &hot.name)
}
